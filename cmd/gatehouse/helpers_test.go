package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

// testServer is a real gatehouse server on a loopback port over a bbolt
// file in a temporary directory.
type testServer struct {
	t      *testing.T
	addr   string
	dir    string
	bearer string // operator token when started with withAuth
}

type serverOpt func(o *server.Options, st *bolt.Store, ts *testServer)

// withAuth turns authentication on and gives the server a bootstrap
// operator token.
func withAuth(o *server.Options, st *bolt.Store, ts *testServer) {
	o.Authenticate = true
	bearer, created, err := server.BootstrapOperatorToken(context.Background(), st, "test operator", time.Now())
	if err != nil || !created {
		ts.t.Fatalf("bootstrap token: %v (created %v)", err, created)
	}
	ts.bearer = bearer
}

func withTLS(cfg *tls.Config) serverOpt {
	return func(o *server.Options, _ *bolt.Store, _ *testServer) { o.TLS = cfg }
}

// mustStart starts a server over a new store and stops it when the test
// ends.
func mustStart(t *testing.T, opts ...serverOpt) *testServer {
	t.Helper()
	return mustStartIn(t, t.TempDir(), opts...)
}

// mustStartIn starts a server over the store in dir.
func mustStartIn(t *testing.T, dir string, opts ...serverOpt) *testServer {
	t.Helper()
	ts := &testServer{t: t, dir: dir}
	st, err := bolt.Open(ts.dir)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	o := server.Options{Store: st, Logger: log}
	for _, f := range opts {
		f(&o, st, ts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	snaps, err := replica.New(ctx, st, log)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	o.Snapshots = snaps
	followed := make(chan struct{})
	go func() { defer close(followed); snaps.Run(ctx) }()
	srv := server.New(o)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	ts.addr = lis.Addr().String()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		cancel()
		<-followed
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return ts
}

// result is what one run of the CLI printed and its exit code.
type result struct {
	out, err string
	code     int
}

// runCLI runs the CLI in-process with args and the given environment.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := execute(ctx, args, strings.NewReader(stdin), &out, &errb, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	return result{out: out.String(), err: errb.String(), code: code}
}

// run runs the CLI against ts (GATEHOUSE_ADDR set; the operator token
// passed when the server authenticates).
func (ts *testServer) run(args ...string) result {
	ts.t.Helper()
	env := map[string]string{"GATEHOUSE_ADDR": ts.addr}
	if ts.bearer != "" {
		env["GATEHOUSE_TOKEN"] = ts.bearer
	}
	return runCLI(ts.t, env, "", args...)
}

// must runs the CLI and fails the test unless it exits 0.
func (ts *testServer) must(args ...string) string {
	ts.t.Helper()
	r := ts.run(args...)
	if r.code != 0 {
		ts.t.Fatalf("gatehouse %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// mustFail runs the CLI and fails the test unless it exits with code.
func (ts *testServer) mustFail(code int, args ...string) result {
	ts.t.Helper()
	r := ts.run(args...)
	if r.code != code {
		ts.t.Fatalf("gatehouse %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, code, r.out, r.err)
	}
	return r
}

// mustJSON runs the CLI with --output json and decodes the answer.
func (ts *testServer) mustJSON(args ...string) map[string]any {
	ts.t.Helper()
	out := ts.must(append(args, "--output", "json")...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		ts.t.Fatalf("gatehouse %s: output is not a JSON object: %v\n%s", strings.Join(args, " "), err, out)
	}
	return m
}

// field reads a dotted path of a decoded JSON object ("" when missing).
func field(m map[string]any, path string) any {
	var v any = m
	for _, p := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[p]
	}
	return v
}

// detail parses a detail table ("name  value" lines) into a map.
func detail(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if line == "" || strings.HasPrefix(line, " ") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		m[k] = strings.TrimSpace(v)
	}
	return m
}

// column returns the cells of the named column of a list table.
func tableColumn(t *testing.T, out, header string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	idx := strings.Index(lines[0], header)
	if idx < 0 {
		t.Fatalf("no column %s in\n%s", header, out)
	}
	var cells []string
	for _, l := range lines[1:] {
		if len(l) <= idx {
			cells = append(cells, "")
			continue
		}
		cells = append(cells, strings.Fields(l[idx:])[0])
	}
	return cells
}

// wantIn fails unless s contains every want.
func wantIn(t *testing.T, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Fatalf("output lacks %q:\n%s", w, s)
		}
	}
}
