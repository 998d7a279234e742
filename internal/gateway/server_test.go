package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/grpc"
)

// realServer is a daemon's server on a bbolt store in a temporary
// directory, seeded with the demo data, and the gateway's in-process
// connection to it.
func realServer(t testing.TB) *grpc.ClientConn {
	t.Helper()
	return realServerLogging(t, io.Discard)
}

// realServerLogging is realServer with its log, every call at DEBUG, in
// JSON to w.
func realServerLogging(t testing.TB, w io.Writer) *grpc.ClientConn {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	if _, err := demo.Seed(ctx, st, time.Now()); err != nil {
		t.Fatal(err)
	}
	snaps, err := replica.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		snaps.Run(fctx)
	}()
	srv := server.New(server.Options{Store: st, Snapshots: snaps, Logger: log})
	conn, err := srv.DialInProcess()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		stop()
		<-done
	})
	return conn
}

// TestStream_OutlivesReadAndWriteTimeouts: a policy watch stays open
// (here with heartbeats) far beyond the server's read and write timeouts,
// which bound unary requests only.
func TestStream_OutlivesReadAndWriteTimeouts(t *testing.T) {
	conn := realServer(t)
	const timeout = 200 * time.Millisecond
	g, err := New(t.Context(), Options{Conn: conn, ReadTimeout: timeout, WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	hs.Config = g.Server()
	hs.Start()
	t.Cleanup(hs.Close)

	sess, err := gatehousev1.NewSessionServiceClient(conn).StartSession(t.Context(), &gatehousev1.StartSessionRequest{
		AccountId: demo.AccountID, Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	url := hs.URL + "/v1/sessions/" + sess.GetSession().GetId() + "/policy:watch?actor.role=ROLE_AGENT&actor.id=alice&heartbeat_interval_ms=500"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("HTTP %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	start := time.Now()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 16<<20)
	lines := 0
	for lines < 4 && sc.Scan() {
		var line struct {
			Result *struct {
				Policy            json.RawMessage `json:"policy"`
				HeartbeatRevision string          `json:"heartbeat_revision"`
			} `json:"result"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Result == nil {
			t.Fatalf("line %d %q: %v", lines, sc.Bytes(), err)
		}
		lines++
	}
	if lines < 4 {
		t.Fatalf("stream ended after %d lines and %v (timeouts %v): %v", lines, time.Since(start), timeout, sc.Err())
	}
	if time.Since(start) < 5*timeout {
		t.Fatalf("4 lines within %v: the heartbeats came sooner than asked", time.Since(start))
	}
}

// TestUnary_OverRealServer: a read, a write with the etag read and a
// stale etag, as a client of the HTTP API sees them.
func TestUnary_OverRealServer(t *testing.T) {
	conn := realServer(t)
	g, err := New(t.Context(), Options{Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g)
	t.Cleanup(hs.Close)
	base := hs.URL + "/v1/accounts/" + demo.AccountID + "/liveGuideSettings"
	var got struct {
		Settings map[string]any `json:"settings"`
	}
	do := func(method, url, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: HTTP %d %s, want %d", method, url, resp.StatusCode, b, want)
		}
		if want == 200 {
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
		}
	}
	do("GET", base, "", 200)
	etag, _ := got.Settings["etag"].(string)
	if _, ok := got.Settings["voice_chat"]; !ok {
		t.Errorf("a false switch is missing from the response: %v", got.Settings)
	}
	// The whole resource as read, one switch changed: only that one is
	// written (the mask is derived from the body, minus etag, revision
	// and account_id).
	got.Settings["voice_chat"] = true
	body, _ := json.Marshal(map[string]any{"voice_chat": true, "etag": etag, "account_id": demo.AccountID, "revision": got.Settings["revision"]})
	do("PATCH", base, string(body), 200)
	if got.Settings["voice_chat"] != true || got.Settings["etag"] == etag {
		t.Errorf("after PATCH: %v", got.Settings)
	}
	do("PATCH", base, string(body), http.StatusConflict) // the etag is stale now

	// An account as read, renamed and sent back whole: its output-only
	// fields (create_time, cobrowse_url, …) are ignored.
	acct := hs.URL + "/v1/accounts/" + demo.AccountID
	var a struct {
		Account map[string]any `json:"account"`
	}
	resp, err := http.Get(acct)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	a.Account["display_name"] = "Renamed"
	whole, _ := json.Marshal(a.Account)
	req, _ := http.NewRequest(http.MethodPatch, acct, bytes.NewReader(whole))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var after struct {
		Account struct {
			DisplayName string `json:"display_name"`
		} `json:"account"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &after) != nil || after.Account.DisplayName != "Renamed" {
		t.Errorf("PATCH of the account as read: HTTP %d %s", resp.StatusCode, b)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestCallLog_NamesTheHTTPClient: the call log line of an HTTP request
// says protocol http and the HTTP client's address — not the in-process
// connection's, nor an address the client claims in X-Forwarded-For.
func TestCallLog_NamesTheHTTPClient(t *testing.T) {
	var logs syncBuffer
	conn := realServerLogging(t, &logs)
	g, err := New(t.Context(), Options{Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g)
	t.Cleanup(hs.Close)
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/accounts/"+demo.AccountID, nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Request-Id", "http-log-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "http-log-test" {
		t.Errorf("X-Request-Id = %q", got)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil || e["request_id"] != "http-log-test" {
			continue
		}
		if e["protocol"] != "http" || e["peer.address"] != "127.0.0.1" {
			t.Errorf("call log: protocol %v, peer.address %v; want http, 127.0.0.1", e["protocol"], e["peer.address"])
		}
		return
	}
	t.Fatalf("no call log line with the request id:\n%s", logs.String())
}
