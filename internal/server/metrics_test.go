package server

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/observe"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func TestMetrics_DecisionsAndGRPC(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	e := MustStart(t, "", func(o *Options) { o.Metrics = m })
	e.MustCreateAccount("acme")
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true}, "agent_click_restricted")
	sess := e.MustStartSession("acme")
	req := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/"}
	for range 3 {
		e.MustCheck(req)
	}
	if _, err := e.decide.CheckFeatures(ctxT(t), &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{req, req}}); err != nil {
		t.Fatal(err)
	}
	got := metricValue(t, m, "gatehouse_decisions_total", "feature="+policy.FeatureClick.String(), "reason="+policy.ReasonAgentClickRestricted.String())
	if got != 5 {
		t.Fatalf("click/agent_click_restricted = %v, want 5", got)
	}
	n, err := testutil.GatherAndCount(m.Registry, "grpc_server_handled_total", "gatehouse_snapshot_revision", "gatehouse_store_size_bytes", "gatehouse_decisions_total")
	if err != nil || n == 0 {
		t.Fatalf("metrics gathered: %d, %v", n, err)
	}
	expected := `
# HELP gatehouse_snapshot_revision Store revision of the snapshot decisions are answered from.
# TYPE gatehouse_snapshot_revision gauge
gatehouse_snapshot_revision ` + formatUint(e.srv.snaps.Current().Revision()) + "\n"
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(expected), "gatehouse_snapshot_revision"); err != nil {
		t.Fatal(err)
	}
}

func formatUint(v uint64) string { return service.EtagOf(v) }

// TestRequestID: a request id the caller sends is echoed in the response
// header, and in the trailer when the call fails; a call without one (or
// with one that is not a sensible token) gets none when it succeeds and a
// generated one in the trailer when it fails, for unary calls and streams
// alike; the call's log line carries the same id.
func TestRequestID(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	e := MustStart(t, "", func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	loggedID := func(t *testing.T, method, code string) []string {
		t.Helper()
		var ids []string
		for _, c := range finishedCalls(t, logs, method) {
			if c["grpc.code"] == code {
				ids = append(ids, fmt.Sprint(c["request_id"]))
			}
		}
		return ids
	}
	isGenerated := regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString

	var hdr, trl metadata.MD
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "x-request-id", "req-42")
	if _, err := e.admin.ListAccounts(ctx, &gatehousev1.ListAccountsRequest{}, grpc.Header(&hdr), grpc.Trailer(&trl)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-request-id"); len(got) != 1 || got[0] != "req-42" {
		t.Errorf("sent request id, success: header %v, want req-42", got)
	}
	if !slices.Contains(loggedID(t, "ListAccounts", "OK"), "req-42") {
		t.Errorf("no OK ListAccounts log line with request_id req-42")
	}

	hdr, trl = nil, nil
	ctx = metadata.AppendToOutgoingContext(ctxT(t), "x-request-id", "req-43")
	_, err := e.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "nowhere"}, grpc.Header(&hdr), grpc.Trailer(&trl))
	wantCode(t, err, codes.NotFound)
	if got := trl.Get("x-request-id"); len(got) != 1 || got[0] != "req-43" {
		t.Errorf("sent request id, failure: trailer %v, want req-43", got)
	}
	if !slices.Contains(loggedID(t, "GetAccount", "NotFound"), "req-43") {
		t.Errorf("no NotFound GetAccount log line with request_id req-43")
	}

	for _, sent := range []string{"", strings.Repeat("x", 65), "two words"} {
		hdr, trl = nil, nil
		ctx := ctxT(t)
		if sent != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", sent)
		}
		if _, err := e.admin.ListAccounts(ctx, &gatehousev1.ListAccountsRequest{}, grpc.Header(&hdr), grpc.Trailer(&trl)); err != nil {
			t.Fatal(err)
		}
		if got := append(hdr.Get("x-request-id"), trl.Get("x-request-id")...); len(got) != 0 {
			t.Errorf("request id %q, success: got %v, want none", sent, got)
		}
		_, err := e.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "nowhere"}, grpc.Header(&hdr), grpc.Trailer(&trl))
		wantCode(t, err, codes.NotFound)
		got := trl.Get("x-request-id")
		if len(got) != 1 || !isGenerated(got[0]) {
			t.Fatalf("request id %q, failure: trailer %v, want a generated id", sent, got)
		}
		if !slices.Contains(loggedID(t, "GetAccount", "NotFound"), got[0]) {
			t.Errorf("no NotFound GetAccount log line with the generated request_id %s", got[0])
		}
	}

	// A stream that fails returns a generated id in its trailer too.
	w, err := e.decide.WatchSessionPolicy(ctxT(t), &gatehousev1.WatchSessionPolicyRequest{SessionId: "s-nowhere", Actor: agent("alice")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Recv()
	wantCode(t, err, codes.NotFound)
	if got := w.Trailer().Get("x-request-id"); len(got) != 1 || !isGenerated(got[0]) {
		t.Errorf("failed stream: trailer %v, want a generated id", got)
	} else if !slices.Contains(loggedID(t, "WatchSessionPolicy", "NotFound"), got[0]) {
		t.Errorf("no NotFound WatchSessionPolicy log line with request_id %s", got[0])
	}
}

// TestMetrics_NotificationQueue: the outbox gauges count the queued
// completed-session notifications and the age of the oldest, by the
// server's clock.
func TestMetrics_NotificationQueue(t *testing.T) {
	t.Parallel()
	clk := &outboxClock{now: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)}
	m := NewMetrics()
	e := MustStart(t, "", func(o *Options) { o.Metrics = m; o.Now = clk.Now })
	supportFixture(t, e)
	gauges := func() string {
		t.Helper()
		var b strings.Builder
		for _, name := range []string{"gatehouse_notifications_queued", "gatehouse_notifications_oldest_age_seconds"} {
			mfs, err := m.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() == name {
					fmt.Fprintf(&b, "%s=%g ", name, mf.GetMetric()[0].GetGauge().GetValue())
				}
			}
		}
		return strings.TrimSpace(b.String())
	}
	if got := gauges(); got != "gatehouse_notifications_queued=0 gatehouse_notifications_oldest_age_seconds=0" {
		t.Fatalf("empty outbox: %s", got)
	}
	e.setNotificationEmail("corp", "ops@example.com")
	e.mustEndSession(&gatehousev1.EndSessionRequest{SessionId: e.MustStartSupport("alice", "corp-default").GetId()})
	clk.Advance(90 * time.Second)
	e.mustEndSession(&gatehousev1.EndSessionRequest{SessionId: e.MustStartSupport("bob", "corp-eu").GetId()})
	if got := gauges(); got != "gatehouse_notifications_queued=2 gatehouse_notifications_oldest_age_seconds=90" {
		t.Fatalf("two queued, the oldest 90 s ago: %s", got)
	}
}

// TestMetrics_Documented: docs/operations.md lists every gatehouse_*
// metric, and names none that does not exist.
func TestMetrics_Documented(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	e := MustStart(t, "", func(o *Options) { o.Metrics = m })
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme").GetId()
	// The decision log's dropped lines, labelled by account, are served
	// once an account dropped a line: acme logs every decision, and asks
	// more than its share of a second.
	if _, err := e.admin.UpdateAccount(ctxT(t), &gatehousev1.UpdateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DecisionLogPercent: 100},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"decision_log_percent"}}}); err != nil {
		t.Fatal(err)
	}
	for range 4 * observe.DecisionLogAccountPerSecond {
		e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, mf := range mfs {
		if name := mf.GetName(); strings.HasPrefix(name, "gatehouse_") {
			served[name] = true
			if !strings.Contains(string(doc), "`"+name+"`") && !strings.Contains(string(doc), "`"+name+"{") {
				t.Errorf("docs/operations.md does not document %s", name)
			}
		}
	}
	// Served on the daemon's registry by the console's guards, whose own
	// test (internal/console) checks that it is documented; and by the
	// daemon's leader election (cmd/gatehoused, TestE2E_EtcdLeaderFailover).
	servedElsewhere := map[string]bool{"gatehouse_console_refused_total": true, "gatehouse_leader": true}
	for _, name := range regexp.MustCompile("gatehouse_[a-z_]+").FindAllString(string(doc), -1) {
		if !served[name] && !servedElsewhere[name] {
			t.Errorf("docs/operations.md names %s, which is not served", name)
		}
	}
}
