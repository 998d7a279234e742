package server

import (
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
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
	got := testutil.ToFloat64(m.decisions[featureSlot(policy.FeatureClick)][policy.ReasonAgentClickRestricted])
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

func formatUint(v uint64) string { return etagOf(v) }

func TestRequestID_EchoedOrGenerated(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	var hdr metadata.MD
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "x-request-id", "req-42")
	if _, err := e.admin.ListAccounts(ctx, &gatehousev1.ListAccountsRequest{}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-request-id"); len(got) != 1 || got[0] != "req-42" {
		t.Fatalf("echoed request id = %v", got)
	}
	hdr = nil
	if _, err := e.admin.ListAccounts(ctxT(t), &gatehousev1.ListAccountsRequest{}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-request-id"); len(got) != 1 || len(got[0]) != 16 {
		t.Fatalf("generated request id = %v", got)
	}
}
