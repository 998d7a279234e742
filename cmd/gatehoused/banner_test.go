package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// The --demo banner prints calls that fit the configuration running: no
// -plaintext under TLS, a bearer header under --auth token, an address a
// client can dial, and only the clients that exist.
func TestBanner_FitsTheConfiguration(t *testing.T) {
	t.Parallel()
	both := tools{grpcurl: "bin/grpcurl", gatehouse: "bin/gatehouse"}
	for _, tc := range []struct {
		name   string
		cfg    func(*config.Config)
		listen string
		t      tools
		want   []string
		never  []string
	}{
		{"plaintext, no auth", func(*config.Config) {}, "127.0.0.1:8470", both,
			[]string{"bin/grpcurl -plaintext 127.0.0.1:8470 list", "bin/gatehouse --addr 127.0.0.1:8470 settings get -a demo"},
			[]string{"authorization", "--token", "-cacert"}},
		{"token with a bootstrap file", func(c *config.Config) { c.Auth, c.BootstrapTokenFile = "token", "/var/lib/gh/op token" }, "127.0.0.1:8470", both,
			[]string{`bin/grpcurl -plaintext -H "authorization: Bearer $(cat '/var/lib/gh/op token')" 127.0.0.1:8470 list`,
				`bin/gatehouse --addr 127.0.0.1:8470 --token-file '/var/lib/gh/op token' settings get`},
			nil},
		{"token without a file", func(c *config.Config) { c.Auth = "token" }, "127.0.0.1:8470", both,
			[]string{`-H "authorization: Bearer $TOKEN"`, `--token "$TOKEN"`, "set TOKEN"}, nil},
		{"TLS and mutual TLS on every address", func(c *config.Config) {
			c.TLSCert, c.TLSKey, c.TLSClientCA = "srv.crt", "srv.key", "ca.crt"
		}, "0.0.0.0:8470", both,
			[]string{"bin/grpcurl -cacert srv.crt -cert CLIENT.crt -key CLIENT.key 127.0.0.1:8470 list",
				"--addr 127.0.0.1:8470 --tls-ca srv.crt --tls-cert CLIENT.crt --tls-key CLIENT.key"},
			[]string{"-plaintext", "--addr 0.0.0.0", " 0.0.0.0:8470 list"}},
		{"no clients built", func(*config.Config) {}, "[::]:8470", tools{},
			[]string{"make build", "make bin/grpcurl"}, []string{"bin/grpcurl -", "bin/gatehouse -", "built by make run"}},
		{"only the CLI", func(*config.Config) {}, "[::]:8470", tools{gatehouse: "gatehouse"},
			[]string{"gatehouse --addr [::1]:8470 health", "make bin/grpcurl builds it"}, []string{"grpcurl -plaintext"}},
	} {
		cfg := config.Default()
		tc.cfg(&cfg)
		got := demoBanner(cfg, tc.listen, tc.t)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: banner lacks %q:\n%s", tc.name, w, got)
			}
		}
		for _, n := range tc.never {
			if strings.Contains(got, n) {
				t.Errorf("%s: banner has %q:\n%s", tc.name, n, got)
			}
		}
		// Every grpcurl call carries the transport and credentials.
		for _, line := range strings.Split(got, "\n") {
			if !strings.Contains(line, "grpcurl ") || !strings.Contains(line, "gatehouse.v1.") && !strings.HasSuffix(line, " list") {
				continue
			}
			if strings.Contains(line, "-plaintext") == (cfg.TLSCert != "") {
				t.Errorf("%s: %q", tc.name, line)
			}
			if strings.Contains(line, "authorization: Bearer") != (cfg.Auth == "token") {
				t.Errorf("%s: %q", tc.name, line)
			}
		}
	}
}

func TestBanner_FindTools(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "grpcurl"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "gatehouse"), []byte("not executable"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := findTools(dir)
	wantCLI := ""
	if _, err := exec.LookPath("gatehouse"); err == nil {
		wantCLI = "gatehouse"
	}
	if got.grpcurl != "bin/grpcurl" || got.gatehouse != wantCLI {
		t.Fatalf("findTools = %+v", got)
	}
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// cliBinary builds the admin CLI once per test run.
func cliBinary(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatehouse-cli-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "gatehouse")
		if out, err := exec.Command("go", "build", "-buildvcs=false", "-o", cliPath, "../gatehouse").CombinedOutput(); err != nil {
			cliErr = err
			t.Logf("%s", out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// The CLI commands the banner prints run as printed against the daemon
// that printed them, with authentication on.
func TestE2E_BannerCommandsWork(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(cliBinary(t), filepath.Join(work, "bin", "gatehouse")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "--listen", "127.0.0.1:0", "--data-dir", "data", "--demo",
		"--auth", "token", "--bootstrap-token-file", "operator.token")
	cmd.Dir = work
	cmd.Env = environ()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var calls []string
	deadline := time.After(startTimeout)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("gatehoused exited before the banner ended")
			}
			if c, ok := strings.CutPrefix(l, "  bin/gatehouse "); ok {
				calls = append(calls, "bin/gatehouse "+c)
			}
			done = strings.Contains(l, "docs/cli.md has every command")
		case <-deadline:
			t.Fatal("no banner")
		}
	}
	go func() {
		for range lines {
		}
	}()
	if len(calls) < 3 {
		t.Fatalf("banner has %d CLI calls: %q", len(calls), calls)
	}
	for _, c := range calls {
		sh := exec.Command("sh", "-c", c)
		sh.Dir = work
		sh.Env = environ()
		if out, err := sh.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", c, err, out)
		}
	}
}
