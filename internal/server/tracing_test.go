package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

const checkFeatureSpan = "gatehouse.v1.DecisionService/CheckFeature"

// tracedEnv is a server traced into rec, logging JSON into logs.
func tracedEnv(t *testing.T, opts ...func(*Options)) (*testEnv, *tracetest.SpanRecorder, *syncBuffer) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	logs := &syncBuffer{}
	e := MustStart(t, "", append([]func(*Options){func(o *Options) {
		o.TracerProvider = tp
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}}, opts...)...)
	return e, rec, logs
}

// endedSpan waits until a span named name for which match holds has ended
// and returns it. A server span ends after the answer is on its way, so it
// may end just after the client has the answer.
func endedSpan(t *testing.T, rec *tracetest.SpanRecorder, name string, match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range rec.Ended() {
			if s.Name() == name && (match == nil || match(s)) {
				return s
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range rec.Ended() {
				names = append(names, s.Name())
			}
			t.Fatalf("no ended span %q matching within 10s; ended: %q", name, names)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// startedNamed returns the started spans (sampled ones only: the SDK does
// not start the others) named name.
func startedNamed(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Started() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// logEntries returns the JSON log lines with msg "finished call" for method.
func finishedCalls(t *testing.T, logs *syncBuffer, method string) []map[string]any {
	t.Helper()
	var out []map[string]any
	if strings.TrimSpace(logs.String()) == "" {
		return nil
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e["msg"] == "finished call" && e["grpc.method"] == method {
			out = append(out, e)
		}
	}
	return out
}

// TestTracing_CheckFeatureContinuesCallerTrace: a caller that traces (a
// session server with otelgrpc's client handler) sends its trace context;
// Gatehouse's server span continues that trace as a child of the caller's
// span, carries the method name, the gRPC code and the decision, and the
// call's log line names the trace.
func TestTracing_CheckFeatureContinuesCallerTrace(t *testing.T) {
	t.Parallel()
	e, rec, logs := tracedEnv(t)
	e.MustCreateAccount("acme")
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true}, "agent_click_restricted")
	sess := e.MustStartSession("acme")

	callerRec := tracetest.NewSpanRecorder()
	callerTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(callerRec))
	conn, err := grpc.NewClient(e.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(callerTP),
			otelgrpc.WithPropagators(propagation.TraceContext{}), otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	resp, err := gatehousev1.NewDecisionServiceClient(conn).CheckFeature(ctxT(t), &gatehousev1.CheckFeatureRequest{
		SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/"})
	if err != nil {
		t.Fatal(err)
	}
	callerSpans := callerRec.Ended()
	if len(callerSpans) != 1 || callerSpans[0].Name() != checkFeatureSpan {
		t.Fatalf("caller recorded %d spans, want its one CheckFeature client span", len(callerSpans))
	}
	caller := callerSpans[0].SpanContext()

	s := endedSpan(t, rec, checkFeatureSpan, func(s sdktrace.ReadOnlySpan) bool { return s.SpanContext().TraceID() == caller.TraceID() })
	if s.Parent().SpanID() != caller.SpanID() || !s.Parent().IsRemote() {
		t.Errorf("server span's parent = %s (remote %v), want the caller's span %s", s.Parent().SpanID(), s.Parent().IsRemote(), caller.SpanID())
	}
	if s.SpanKind() != trace.SpanKindServer {
		t.Errorf("span kind = %v, want server", s.SpanKind())
	}
	if s.Status().Code != otelcodes.Unset {
		t.Errorf("span status = %v %q, want unset (OK)", s.Status().Code, s.Status().Description)
	}
	a := spanAttrs(s)
	for key, want := range map[attribute.Key]attribute.Value{
		"rpc.method":                 attribute.StringValue(checkFeatureSpan),
		"rpc.response.status_code":   attribute.StringValue("OK"),
		"gatehouse.feature":          attribute.StringValue("click"),
		"gatehouse.decision.allowed": attribute.BoolValue(false),
		"gatehouse.decision.reason":  attribute.StringValue("agent_click_restricted"),
		"gatehouse.decision.rule":    attribute.StringValue("agent_click_restricted"),
		"gatehouse.revision":         attribute.Int64Value(int64(resp.GetRevision())),
	} {
		if got, ok := a[key]; !ok || got != want {
			t.Errorf("span attribute %s = %v (present %v), want %v", key, got.String(), ok, want.String())
		}
	}

	calls := finishedCalls(t, logs, "CheckFeature")
	if len(calls) != 1 || calls[0]["trace_id"] != caller.TraceID().String() {
		t.Errorf("CheckFeature log lines %v, want one with trace_id %s", calls, caller.TraceID())
	}
}

// TestTracing_StatusSamplingAndHealth: the span's status follows the gRPC
// code (a client error is not a server error), a traceparent is honoured
// also when it says "not sampled", a call without one starts its own
// trace, CheckFeatures records its size, and health checks are not traced.
func TestTracing_StatusSamplingAndHealth(t *testing.T) {
	t.Parallel()
	e, rec, logs := tracedEnv(t, func(o *Options) { o.Limits.DecisionTimeout = 50 * time.Millisecond })
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"

	// NOT_FOUND: the caller's mistake, so the span status stays unset.
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "traceparent", "00-"+traceID+"-"+parentID+"-01")
	_, err := e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: "s-nowhere", Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/"})
	wantCode(t, err, codes.NotFound)
	s := endedSpan(t, rec, checkFeatureSpan, nil)
	if s.SpanContext().TraceID().String() != traceID || s.Parent().SpanID().String() != parentID {
		t.Errorf("span trace %s parent %s, want the traceparent's %s and %s", s.SpanContext().TraceID(), s.Parent().SpanID(), traceID, parentID)
	}
	if a := spanAttrs(s); a["rpc.response.status_code"].AsString() != "NOT_FOUND" || s.Status().Code != otelcodes.Unset {
		t.Errorf("NOT_FOUND span: status_code %q, status %v; want NOT_FOUND, unset", a["rpc.response.status_code"].AsString(), s.Status().Code)
	}
	if _, ok := spanAttrs(s)["gatehouse.decision.reason"]; ok {
		t.Error("a refused check has a decision reason on its span")
	}

	// DEADLINE_EXCEEDED: the server's own decision deadline ran out while
	// waiting for a revision, an error of the server's.
	noDeadline, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = e.decide.CheckFeature(noDeadline, &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"),
		Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/", MinRevision: 1 << 40})
	wantCode(t, err, codes.DeadlineExceeded)
	s = endedSpan(t, rec, checkFeatureSpan, func(s sdktrace.ReadOnlySpan) bool { return s.SpanContext().TraceID().String() != traceID })
	if a := spanAttrs(s); a["rpc.response.status_code"].AsString() != "DEADLINE_EXCEEDED" || s.Status().Code != otelcodes.Error {
		t.Errorf("DEADLINE_EXCEEDED span: status_code %q, status %v; want DEADLINE_EXCEEDED, error", a["rpc.response.status_code"].AsString(), s.Status().Code)
	}
	if s.Parent().IsValid() {
		t.Errorf("a call without a traceparent has parent %s, want a new trace", s.Parent().SpanID())
	}

	// A caller that decided not to sample: no span is started.
	const unsampledTrace = "0af7651916cd43dd8448eb211c80319c"
	ctx = metadata.AppendToOutgoingContext(ctxT(t), "traceparent", "00-"+unsampledTrace+"-b7ad6b7169203331-00")
	before := len(rec.Started())
	if _, err := e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range rec.Started()[before:] {
		if s.SpanContext().TraceID().String() == unsampledTrace {
			t.Errorf("span %q started in a trace its caller did not sample", s.Name())
		}
	}
	if calls := finishedCalls(t, logs, "CheckFeature"); len(calls) != 3 || calls[2]["trace_id"] != nil {
		t.Errorf("CheckFeature log lines %v, want 3, the unsampled one without trace_id", calls)
	}

	// CheckFeatures: the number of checks and the revision.
	req := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/"}
	resp, err := e.decide.CheckFeatures(ctxT(t), &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{req, req, req}})
	if err != nil {
		t.Fatal(err)
	}
	s = endedSpan(t, rec, "gatehouse.v1.DecisionService/CheckFeatures", nil)
	if a := spanAttrs(s); a["gatehouse.checks"].AsInt64() != 3 || a["gatehouse.revision"].AsInt64() != int64(resp.GetRevision()) {
		t.Errorf("CheckFeatures span attributes %v, want gatehouse.checks 3 and gatehouse.revision %d", a, resp.GetRevision())
	}

	// Health checks: no span is even started (a span starts before the
	// handler runs, so none can still be on its way).
	if _, err := healthpb.NewHealthClient(e.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := len(startedNamed(rec, "grpc.health.v1.Health/Check")); n != 0 {
		t.Errorf("health check started %d spans, want none", n)
	}
	// ... while other calls on the same connection are traced.
	if len(startedNamed(rec, "gatehouse.v1.SessionService/StartSession")) != 1 || len(startedNamed(rec, "gatehouse.v1.AdminService/CreateAccount")) != 1 {
		t.Error("admin and session calls were not traced")
	}
}

// TestTracing_OffInstallsNothing: without a TracerProvider the server has
// no stats handler. Were one installed anyway it would fall back to
// OpenTelemetry's global provider and propagator, so the test sets both
// and checks that no span starts and no log line names a trace. It changes
// globals, so it does not run in parallel.
func TestTracing_OffInstallsNothing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(tracenoop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	})
	logs := &syncBuffer{}
	e := MustStart(t, "", func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	if e.srv.tracing {
		t.Fatal("server without a TracerProvider has tracing on")
	}
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if _, err := e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/"}); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Started()); n != 0 {
		t.Errorf("%d spans started without tracing, want none", n)
	}
	calls := finishedCalls(t, logs, "CheckFeature")
	if len(calls) != 1 {
		t.Fatalf("CheckFeature log lines %v, want 1", calls)
	}
	if id, ok := calls[0]["trace_id"]; ok {
		t.Errorf("log line without tracing has trace_id %v", id)
	}
}

// TestTracing_InnerSpans: in a sampled call, a write shows its store
// commit (with the revision) and its wait for the snapshot as child spans
// of the call's span; a refused write's commit is not an error; a decision
// that waits for a revision shows the wait, failed when it ran out. An
// unsampled call starts no inner span.
func TestTracing_InnerSpans(t *testing.T) {
	t.Parallel()
	e, rec, _ := tracedEnv(t, func(o *Options) { o.Limits.DecisionTimeout = 50 * time.Millisecond })
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	sampled := func(traceID string) context.Context {
		return metadata.AppendToOutgoingContext(ctxT(t), "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	}
	inTrace := func(traceID string) func(sdktrace.ReadOnlySpan) bool {
		return func(s sdktrace.ReadOnlySpan) bool { return s.SpanContext().TraceID().String() == traceID }
	}

	const write = "4bf92f3577b34da6a3ce929d0e0e4701"
	resp, err := e.admin.UpdateLiveGuideSettings(sampled(write), &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", Chat: true}, UpdateMask: mask("chat")})
	if err != nil {
		t.Fatal(err)
	}
	call := endedSpan(t, rec, "gatehouse.v1.AdminService/UpdateLiveGuideSettings", inTrace(write))
	commit := endedSpan(t, rec, "store.commit", inTrace(write))
	wait := endedSpan(t, rec, "snapshot.wait", inTrace(write))
	for _, s := range []sdktrace.ReadOnlySpan{commit, wait} {
		if s.Parent().SpanID() != call.SpanContext().SpanID() || s.Status().Code != otelcodes.Unset {
			t.Errorf("%s: parent %s status %v; want the call's span %s, unset", s.Name(), s.Parent().SpanID(), s.Status().Code, call.SpanContext().SpanID())
		}
	}
	if got := spanAttrs(commit)["gatehouse.revision"].AsInt64(); got != int64(resp.GetSettings().GetRevision()) {
		t.Errorf("store.commit revision %d; want %d", got, resp.GetSettings().GetRevision())
	}

	const refused = "4bf92f3577b34da6a3ce929d0e0e4702"
	_, err = e.admin.DeleteAllowlistEntry(sampled(refused), &gatehousev1.DeleteAllowlistEntryRequest{AccountId: "acme", Id: "nowhere"})
	wantCode(t, err, codes.NotFound)
	if s := endedSpan(t, rec, "store.commit", inTrace(refused)); s.Status().Code != otelcodes.Unset {
		t.Errorf("the commit of a refused write has status %v; want unset", s.Status().Code)
	}

	const far = "4bf92f3577b34da6a3ce929d0e0e4703"
	noDeadline, cancel := context.WithCancel(context.Background()) // the server's 50 ms decision deadline applies
	defer cancel()
	farCtx := metadata.AppendToOutgoingContext(noDeadline, "traceparent", "00-"+far+"-00f067aa0ba902b7-01")
	_, err = e.decide.CheckFeature(farCtx, &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"),
		Feature: gatehousev1.Feature_FEATURE_CHAT, MinRevision: 1 << 40})
	wantCode(t, err, codes.DeadlineExceeded)
	if s := endedSpan(t, rec, "snapshot.wait", inTrace(far)); s.Status().Code != otelcodes.Error {
		t.Errorf("a wait that ran out has status %v; want error", s.Status().Code)
	}

	// Not sampled: no inner span either.
	before := len(rec.Started())
	unsampled := metadata.AppendToOutgoingContext(ctxT(t), "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4704-00f067aa0ba902b7-00")
	if _, err := e.admin.UpdateLiveGuideSettings(unsampled, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", Chat: false}, UpdateMask: mask("chat")}); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Started()) - before; n != 0 {
		t.Errorf("an unsampled write started %d spans", n)
	}
}
