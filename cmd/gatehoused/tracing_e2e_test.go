//go:build unix

package main

import (
	"encoding/hex"
	"net"
	"slices"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/tracing/tracingtest"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// A caller's W3C trace context: trace, parent span, sampled.
const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + callerTraceID + "-" + callerSpanID + "-01"
)

// noScheduledExport keeps the batch span processor from exporting on its
// timer during a test, so that spans reach the collector only through the
// flush at shutdown.
const noScheduledExport = "OTEL_BSP_SCHEDULE_DELAY=600000"

// setupSession creates the account acme, a representative and a session.
func setupSession(t *testing.T, c *clients) string {
	t.Helper()
	return setupSessionIn(t, c, "acme")
}

// setupSessionIn creates the account acct, its Live Guide representative
// alice and a session of hers, and returns the session id.
func setupSessionIn(t *testing.T, c *clients, acct string) string {
	t.Helper()
	ctx := testContext(t)
	if _, err := c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: acct, DisplayName: acct}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: acct,
		Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}}); err != nil {
		t.Fatal(err)
	}
	resp, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: acct,
		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetSession().GetId()
}

// TestE2E_Tracing: with --otel-endpoint on a loopback collector the daemon
// sends spans in plaintext; a CheckFeature carrying a caller's traceparent
// becomes a server span in the caller's trace; with --otel-sample-ratio 0
// calls without a trace context are not traced; health checks never are;
// and the spans still queued at SIGTERM are flushed before the process
// exits.
func TestE2E_Tracing(t *testing.T) {
	t.Parallel()
	col := tracingtest.Start(t)
	d := start(t, []string{noScheduledExport},
		loopbackArgs(t.TempDir(), "--log-level", "debug", "--otel-endpoint", col.Addr, "--otel-sample-ratio", "0")...)
	on := d.mustLog("tracing on")
	if on["otel_endpoint"] != col.Addr || on["plaintext"] != true {
		t.Errorf("tracing log line %v, want endpoint %s in plaintext (loopback)", on, col.Addr)
	}
	c := dial(t, d.addr)
	sess := setupSession(t, c)
	ctx := metadata.AppendToOutgoingContext(testContext(t), "traceparent", traceparent)
	checkDecision(ctx, t, c, click(sess, agent("alice")), true, gatehousev1.Reason_REASON_ALLOWED, "")
	if _, err := c.health.Check(metadata.AppendToOutgoingContext(testContext(t), "traceparent", traceparent), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if n, _ := col.Exports(); n != 0 {
		t.Fatalf("collector received %d exports before shutdown, want none (the test turns the export timer off)", n)
	}

	d.stop()
	spans := col.Spans()
	var names []string
	for _, s := range spans {
		names = append(names, s.GetName())
		if hex.EncodeToString(s.GetTraceId()) != callerTraceID {
			t.Errorf("span %q in trace %x: with --otel-sample-ratio 0 only the caller's trace %s is sampled", s.GetName(), s.GetTraceId(), callerTraceID)
		}
	}
	if !slices.Equal(names, []string{"gatehouse.v1.DecisionService/CheckFeature"}) {
		t.Fatalf("collector received spans %q at shutdown, want the one CheckFeature (no health check)", names)
	}
	s := spans[0]
	if hex.EncodeToString(s.GetParentSpanId()) != callerSpanID || s.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("CheckFeature span parent %x kind %v, want the caller's span %s, server", s.GetParentSpanId(), s.GetKind(), callerSpanID)
	}
	if s.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_UNSET {
		t.Errorf("CheckFeature span status %v, want unset (OK)", s.GetStatus())
	}
	for key, want := range map[string]string{"rpc.response.status_code": "OK", "gatehouse.decision.reason": "allowed", "gatehouse.feature": "click"} {
		if got := tracingtest.Attr(s.GetAttributes(), key).GetStringValue(); got != want {
			t.Errorf("span attribute %s = %q, want %q", key, got, want)
		}
	}
	if got := tracingtest.Attr(s.Resource, "service.name").GetStringValue(); got != "gatehoused" {
		t.Errorf("resource service.name = %q, want gatehoused", got)
	}
	d.mustLog("traces flushed")
	if _, e := d.logIndex("finished call", func(e map[string]any) bool { return e["grpc.method"] == "CheckFeature" }); e == nil || e["trace_id"] != callerTraceID {
		t.Errorf("CheckFeature log line %v, want trace_id %s", e, callerTraceID)
	}
}

// TestE2E_TracingFlushIsBounded: a collector that never answers does not
// hold the shutdown: the flush gets at most --shutdown-timeout (here 1s,
// shorter than the 5s cap, and far shorter than the exporter's own 10s
// within which it retries), the daemon logs that the spans were lost, and
// exits 0.
func TestE2E_TracingFlushIsBounded(t *testing.T) {
	t.Parallel()
	col := tracingtest.Start(t)
	col.Hold()
	d := start(t, []string{noScheduledExport},
		loopbackArgs(t.TempDir(), "--otel-endpoint", col.Addr, "--otel-sample-ratio", "1", "--shutdown-timeout", "1s")...)
	c := dial(t, d.addr)
	if _, err := c.admin.ListAccounts(testContext(t), &gatehousev1.ListAccountsRequest{}); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	d.stop()
	if took := time.Since(sent); took > 4*time.Second {
		t.Errorf("exit took %v after SIGTERM with an unanswering collector, want about 1s", took)
	}
	if n, _ := col.Exports(); n == 0 {
		t.Error("the daemon did not try to flush its spans at shutdown")
	}
	d.mustLog("traces not flushed")
}

// TestE2E_TracingOffByDefault: without --otel-endpoint nothing is traced,
// even with the standard OpenTelemetry variables pointing at a collector:
// the daemon serves, sends nothing, and logs no trace ids.
func TestE2E_TracingOffByDefault(t *testing.T) {
	t.Parallel()
	col := tracingtest.Start(t)
	d := start(t, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + col.Addr, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://" + col.Addr,
		"OTEL_TRACES_EXPORTER=otlp", "OTEL_BSP_SCHEDULE_DELAY=1",
	}, loopbackArgs(t.TempDir())...)
	c := dial(t, d.addr)
	sess := setupSession(t, c)
	ctx := metadata.AppendToOutgoingContext(testContext(t), "traceparent", traceparent)
	checkDecision(ctx, t, c, click(sess, agent("alice")), true, gatehousev1.Reason_REASON_ALLOWED, "")
	d.stop()
	if n, _ := col.Exports(); n != 0 {
		t.Errorf("collector received %d exports from a daemon without --otel-endpoint", n)
	}
	if i, _ := d.logIndex("tracing on", nil); i >= 0 {
		t.Error(`"tracing on" logged without --otel-endpoint`)
	}
	for _, e := range d.logs() {
		if _, ok := e["trace_id"]; ok {
			t.Errorf("log line with trace_id without tracing: %v", e)
		}
	}
}

// TestE2E_TracingCollectorDown: a collector that is not there costs spans,
// not calls: decisions are answered, the failed exports are logged as
// "tracing error" at WARN, and the daemon still stops cleanly.
func TestE2E_TracingCollectorDown(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	// Export every 50ms and give each export 500ms, so that the failure
	// shows at once rather than after the exporter's 10s of retries.
	d := start(t, []string{"OTEL_BSP_SCHEDULE_DELAY=50", "OTEL_BSP_EXPORT_TIMEOUT=500"},
		loopbackArgs(t.TempDir(), "--otel-endpoint", down, "--otel-sample-ratio", "1", "--shutdown-timeout", "1s")...)
	c := dial(t, d.addr)
	sess := setupSession(t, c)
	checkDecision(testContext(t), t, c, click(sess, agent("alice")), true, gatehousev1.Reason_REASON_ALLOWED, "")
	deadline := time.Now().Add(testTimeout)
	for {
		if i, e := d.logIndex("tracing error", nil); i >= 0 {
			if e["level"] != "WARN" || e["err"] == nil {
				t.Errorf("tracing error log line %v, want level WARN with the cause", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"tracing error\" logged within %v of exporting to %s, where nothing listens", testTimeout, down)
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkDecision(testContext(t), t, c, click(sess, agent("alice")), true, gatehousev1.Reason_REASON_ALLOWED, "")
	d.stop()
}
