package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	gatehouseserver "github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/protobuf/encoding/protojson"
)

// startGatehouse runs a real Gatehouse server over a bbolt file holding
// the demo data, on a loopback port, until the test ends.
func startGatehouse(t *testing.T) string {
	t.Helper()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := demo.Seed(ctx, st, time.Now()); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	snaps, err := replica.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	followed := make(chan struct{})
	go func() { defer close(followed); snaps.Run(ctx) }()
	// No queue-delay shedding: a test run on a loaded machine must not be shed.
	srv := gatehouseserver.New(gatehouseserver.Options{Store: st, Snapshots: snaps, Logger: log, Limits: gatehouseserver.Limits{QueueTarget: -1}})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		<-served
		cancel()
		<-followed
		_ = st.Close()
	})
	return lis.Addr().String()
}

// startSessionServer runs the example against the server at target until
// the test ends and returns its base URL.
func startSessionServer(t *testing.T, target string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		// A long staleness bound: the test counts local answers, which a
		// test process starved of CPU on a loaded machine must still give.
		done <- run(ctx, []string{"-gatehouse", target, "-insecure", "-listen", "127.0.0.1:0", "-staleness", "1m"}, io.Discard, ready)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sessionserver: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("sessionserver did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("sessionserver did not start")
	}
	return ""
}

func post(t *testing.T, url, body string, out any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("POST %s: %d %s: %v", url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestSessionServer drives the example over HTTP against a real Gatehouse
// on the demo data: co-browse events are enforced locally with the
// server's answers, the denials are listed as JSON and on the page, and
// once the session ends every event is denied.
func TestSessionServer(t *testing.T) {
	target := startGatehouse(t)
	base := startSessionServer(t, target)
	var started struct {
		ID string `json:"id"`
	}
	if code := post(t, base+"/sessions", `{"customer_id":"cust-1"}`, &started); code != http.StatusCreated || started.ID == "" {
		t.Fatalf("start: %d %+v", code, started)
	}
	sess := base + "/sessions/" + started.ID

	// The server's own answers, to compare with.
	c, err := client.Dial(target, client.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	transfer := `{"tag":"button","classes":["transfer"],"ancestors":[{"tag":"body"},{"tag":"form","id":"move"}]}`
	events := []struct {
		body    string
		allowed bool
		reason  gatehousev1.Reason
		rule    string
	}{
		{`{"actor":"agent","type":"navigate","url":"https://www.example.com/help"}`, true, gatehousev1.Reason_REASON_ALLOWED, "site"},
		{`{"actor":"agent","type":"navigate","url":"https://www.example.com.evil.net/"}`, false, gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED, ""},
		{`{"actor":"agent","type":"click","url":"https://www.example.com/transfer","element":` + transfer + `}`, false, gatehousev1.Reason_REASON_ELEMENT_BLOCKED, "transfer"},
		{`{"actor":"customer","type":"click","url":"https://www.example.com/transfer","element":` + transfer + `}`, true, gatehousev1.Reason_REASON_ALLOWED, ""},
		{`{"actor":"agent","type":"click","url":"https://www.example.com/accounts","element":{"tag":"a"}}`, true, gatehousev1.Reason_REASON_ALLOWED, ""},
		{`{"actor":"agent","type":"type","url":"https://www.example.com/help","element":{"tag":"input"}}`, false, gatehousev1.Reason_REASON_AGENT_INPUT_RESTRICTED, ""},
		{`{"actor":"customer","type":"type","url":"https://www.example.com/help","element":{"tag":"input"}}`, true, gatehousev1.Reason_REASON_ALLOWED, ""},
		{`{"actor":"agent","type":"click","url":"https://pay.example.org/","frame":"iframe","element":{"tag":"button"}}`, false, 0, ""},
	}
	denied := 0
	for _, e := range events {
		var v verdict
		code := post(t, sess+"/events", e.body, &v)
		var ev event
		if err := json.Unmarshal([]byte(e.body), &ev); err != nil {
			t.Fatal(err)
		}
		// The same question over the RPC.
		req := client.CheckRequest{SessionID: started.ID, Feature: features[ev.Type], URL: ev.URL,
			Actor: client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "alice"}}
		if ev.Actor == "customer" {
			req.Actor = client.Actor{Role: gatehousev1.Role_ROLE_CUSTOMER, ID: "cust-1"}
		}
		if ev.Frame == "iframe" {
			req.Frame = gatehousev1.Frame_FRAME_IFRAME
		}
		if len(ev.Element) > 0 {
			req.Element = mustElement(t, ev.Element)
		}
		want, err := c.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if v.Allowed != want.Allowed || v.Reason != want.Reason.String() || v.Rule != want.Rule {
			t.Errorf("%s: sessionserver %+v, Gatehouse %+v", e.body, v, want)
		}
		if v.Allowed != e.allowed || (e.reason != 0 && v.Reason != e.reason.String()) || (e.rule != "" && v.Rule != e.rule) {
			t.Errorf("%s: %+v, want allowed %v %v %q", e.body, v, e.allowed, e.reason, e.rule)
		}
		wantCode := http.StatusOK
		if !v.Allowed {
			wantCode = http.StatusForbidden
			denied++
		}
		if code != wantCode {
			t.Errorf("%s: HTTP %d, want %d", e.body, code, wantCode)
		}
	}

	// Bad events are refused and change nothing.
	for _, body := range []string{`{"actor":"mallory","type":"click","url":"https://www.example.com/"}`,
		`{"actor":"agent","type":"scroll","url":"https://www.example.com/"}`, `{"actor":"agent","type":"click","url":"https://www.example.com/","element":{"tag":7}}`,
		`{"actor":"agent","type":"navigate"}`, `not json`, `{"actor":"agent","type":"click","frame":"popup","url":"https://www.example.com/"}`} {
		if code := post(t, sess+"/events", body, nil); code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", body, code)
		}
	}
	if code := post(t, base+"/sessions/s-nope/events", events[0].body, nil); code != http.StatusNotFound {
		t.Errorf("unknown session: HTTP %d, want 404", code)
	}

	var l listing
	code, b := get(t, sess+"/denied")
	if err := json.Unmarshal(b, &l); err != nil || code != http.StatusOK {
		t.Fatalf("denied: %d %s %v", code, b, err)
	}
	if len(l.Denied) != denied || l.Ended {
		t.Fatalf("listing: %+v, want %d denied", l, denied)
	}
	if l.Denied[1].Verdict.Rule != "transfer" || l.Denied[1].Event.Actor != "agent" {
		t.Fatalf("second denial: %+v", l.Denied[1])
	}
	// Every valid event was decided in-process; the missing URL went to
	// the server for its field violation.
	if l.Checks.Local != uint64(len(events)) || l.Checks.Remote != 1 || l.Checks.Failed != 0 {
		t.Fatalf("checks: %+v, want %d local, 1 remote (the invalid one)", l.Checks, len(events))
	}
	code, page := get(t, sess)
	if code != http.StatusOK || !bytes.Contains(page, []byte("REASON_ELEMENT_BLOCKED")) || !bytes.Contains(page, []byte("button.transfer")) ||
		!bytes.Contains(page, []byte("https://www.example.com.evil.net/")) || !bytes.Contains(page, []byte(fmt.Sprintf("decided locally: %d", len(events)))) {
		t.Fatalf("page: %d\n%s", code, page)
	}

	// Ending the session stops every event, decided locally.
	if code := post(t, sess+"/end", "", nil); code != http.StatusOK {
		t.Fatalf("end: HTTP %d", code)
	}
	var v verdict
	if code := post(t, sess+"/events", events[0].body, &v); code != http.StatusForbidden || v.Reason != gatehousev1.Reason_REASON_SESSION_ENDED.String() {
		t.Fatalf("event after the end: %d %+v", code, v)
	}
	code, b = get(t, sess+"/denied")
	if err := json.Unmarshal(b, &l); err != nil || !l.Ended || len(l.Denied) != denied+1 || l.Checks.Remote != 1 {
		t.Fatalf("after the end: %d %+v %v", code, l, err)
	}
}

func mustElement(t *testing.T, raw json.RawMessage) *gatehousev1.Element {
	t.Helper()
	e := &gatehousev1.Element{}
	if err := protojson.Unmarshal(raw, e); err != nil {
		t.Fatal(err)
	}
	return e
}
