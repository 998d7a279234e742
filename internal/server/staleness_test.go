package server

import (
	"context"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Timing of the staleness tests: the store confirms every interval and
// gives up on etcd after reqTimeout; the bound is many intervals.
const (
	staleInterval = 50 * time.Millisecond
	staleRequest  = 2 * time.Second
	staleBound    = time.Second
)

// etcdEnv is a server on an etcd store reached at endpoint, with its own
// clients (the testEnv's fields but store, which is bbolt's there).
type etcdEnv struct {
	*testEnv
	etcd    *etcd.Store
	metrics *Metrics
	health  healthpb.HealthClient
}

// startOnEtcd starts a server with MaxStaleness bound over an etcd store
// at endpoint under prefix, and stops it when the test ends.
func startOnEtcd(t *testing.T, endpoint, prefix string, bound time.Duration) *etcdEnv {
	t.Helper()
	m := NewMetrics()
	e, st := serveOnEtcd(t, etcd.Options{Endpoints: []string{endpoint}, Prefix: prefix,
		FreshnessInterval: staleInterval, RequestTimeout: staleRequest},
		func(o *Options) { o.Metrics, o.MaxStaleness = m, bound })
	return &etcdEnv{testEnv: e, etcd: st, metrics: m, health: healthpb.NewHealthClient(e.conn)}
}

// healthOf returns the health status of service ("" for the server).
func (e *etcdEnv) healthOf(service string) healthpb.HealthCheckResponse_ServingStatus {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		e.t.Fatalf("health Check(%q): %v", service, err)
	}
	return resp.GetStatus()
}

// awaitHealth waits until the server and every Gatehouse service report
// want.
func (e *etcdEnv) awaitHealth(want healthpb.HealthCheckResponse_ServingStatus, within time.Duration) {
	e.t.Helper()
	services := []string{"", "gatehouse.v1.DecisionService", "gatehouse.v1.SessionService", "gatehouse.v1.AdminService"}
	deadline := time.Now().Add(within)
	for {
		var got []string
		for _, s := range services {
			if st := e.healthOf(s); st != want {
				got = append(got, s+"="+st.String())
			}
		}
		if len(got) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("health after %v: %v; want all %v", within, got, want)
		}
		time.Sleep(staleInterval)
	}
}

// TestStaleness_DecisionsRefusedPastTheBound: a replica cut off from
// etcd answers from its snapshot within --max-staleness; past it every
// call that answers from the snapshot (CheckFeature, CheckFeatures,
// CheckHypothetical, GetSessionPolicy, WatchSessionPolicy, open or new,
// TestAllowlistUrl) is UNAVAILABLE with reason SNAPSHOT_STALE, health
// reports NOT_SERVING, the staleness gauge passes the bound; admin writes
// are UNAVAILABLE with STORE_UNAVAILABLE all along, within the request
// timeout. A replica without a bound keeps answering. When etcd is back,
// the replica catches up with what was written meanwhile and serves
// again, health SERVING.
func TestStaleness_DecisionsRefusedPastTheBound(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	proxy := etcdtest.StartProxy(t, srv.Endpoints[0])
	const prefix = "/stale/"
	e := startOnEtcd(t, proxy.Addr, prefix, staleBound)
	unbounded := startOnEtcd(t, proxy.Addr, prefix, 0)
	direct := startOnEtcd(t, srv.Endpoints[0], prefix, staleBound) // never cut off
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme").GetId()
	rev := e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true}, "agent_click_restricted").GetRevision()
	// One context for the whole test, which takes seconds by design.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clickReq := func(actor *gatehousev1.Actor) *gatehousev1.CheckFeatureRequest {
		return &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: actor, Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/", MinRevision: rev}
	}
	check := func(env *etcdEnv, actor *gatehousev1.Actor, allowed bool) {
		t.Helper()
		resp, err := env.decide.CheckFeature(ctx, clickReq(actor))
		if err != nil {
			t.Fatalf("CheckFeature: %v", err)
		}
		if resp.GetDecision().GetAllowed() != allowed {
			t.Fatalf("CheckFeature(%v) allowed = %v; want %v", actor, resp.GetDecision().GetAllowed(), allowed)
		}
	}
	check(e, agent("alice"), false)
	check(unbounded, agent("alice"), false)
	e.awaitHealth(healthpb.HealthCheckResponse_SERVING, 5*time.Second)
	watch, err := e.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: sess, Actor: agent("alice")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatalf("first policy: %v", err)
	}

	proxy.Cut()
	cut := time.Now()
	// Within the bound: answered from the snapshot, as before.
	check(e, agent("alice"), false)
	check(e, customer("cust-1"), true)
	if time.Since(cut) >= staleBound {
		t.Fatalf("the checks within the bound took %v, longer than the bound", time.Since(cut))
	}
	// Admin writes: UNAVAILABLE, STORE_UNAVAILABLE, within about the
	// request timeout, whatever the call's own deadline.
	start := time.Now()
	_, err = e.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: false}, UpdateMask: mask("agent_click_restricted")})
	st := wantCode(t, err, codes.Unavailable)
	if errorReason(st) != "STORE_UNAVAILABLE" {
		t.Errorf("admin write while cut off: reason %q; want STORE_UNAVAILABLE", errorReason(st))
	}
	if took := time.Since(start); took > 10*staleRequest {
		t.Errorf("admin write failed after %v; want about the request timeout %v", took, staleRequest)
	}
	// Meanwhile a replica in touch with etcd writes: the cut-off ones
	// must not answer from before it past the bound.
	upd, err := direct.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: false}, UpdateMask: mask("agent_click_restricted")})
	if err != nil {
		t.Fatalf("write on the replica in touch with etcd: %v", err)
	}

	// Past the bound.
	e.awaitHealth(healthpb.HealthCheckResponse_NOT_SERVING, staleBound+5*time.Second)
	// The data's age counts from the last confirmation before the cut,
	// at most a few intervals earlier.
	if since := time.Since(cut); since < staleBound-10*staleInterval {
		t.Errorf("NOT_SERVING %v after the cut, well before the bound %v", since, staleBound)
	}
	if _, err := watch.Recv(); err == nil {
		t.Error("the open policy watch sent a policy from a stale snapshot")
	} else if st := wantCode(t, err, codes.Unavailable); errorReason(st) != "SNAPSHOT_STALE" {
		t.Errorf("open watch ended with %v; want reason SNAPSHOT_STALE", err)
	}
	wantStale := func(what string, err error) {
		t.Helper()
		st := wantCode(t, err, codes.Unavailable)
		if errorReason(st) != "SNAPSHOT_STALE" || !strings.Contains(st.Message(), "--max-staleness") {
			t.Errorf("%s: %v; want UNAVAILABLE, SNAPSHOT_STALE naming --max-staleness", what, err)
		}
		if m := errorMeta(st); m["max_staleness"] != staleBound.String() || m["staleness"] == "" {
			t.Errorf("%s: ErrorInfo metadata %v", what, m)
		}
	}
	_, err = e.decide.CheckFeature(ctx, clickReq(customer("cust-1")))
	wantStale("CheckFeature", err)
	_, err = e.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{clickReq(customer("cust-1"))}})
	wantStale("CheckFeatures", err)
	_, err = e.decide.CheckHypothetical(ctx, &gatehousev1.CheckHypotheticalRequest{AccountId: "acme",
		Session: &gatehousev1.HypotheticalSession{Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "c"},
		Checks:  []*gatehousev1.HypotheticalCheck{{Actor: customer("c"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/"}}})
	wantStale("CheckHypothetical", err)
	_, err = e.decide.GetSessionPolicy(ctx, &gatehousev1.GetSessionPolicyRequest{SessionId: sess, Actor: agent("alice")})
	wantStale("GetSessionPolicy", err)
	_, err = e.admin.TestAllowlistUrl(ctx, &gatehousev1.TestAllowlistUrlRequest{AccountId: "acme", Url: "https://www.example.com/"})
	wantStale("TestAllowlistUrl", err)
	w2, err := e.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: sess, Actor: agent("alice")})
	if err == nil {
		_, err = w2.Recv()
	}
	wantStale("new WatchSessionPolicy", err)
	if g := metricValue(t, e.metrics, "gatehouse_snapshot_staleness_seconds"); g <= staleBound.Seconds() {
		t.Errorf("gatehouse_snapshot_staleness_seconds = %v past the bound %v", g, staleBound)
	}
	if n := metricValue(t, e.metrics, "gatehouse_limit_refusals_total", "limit=max_staleness"); n < 7 {
		t.Errorf("gatehouse_limit_refusals_total{limit=max_staleness} = %v; want the 7 refusals", n)
	}
	// Without a bound: answered from the last snapshot however old.
	check(unbounded, agent("alice"), false)

	proxy.Restore()
	e.awaitHealth(healthpb.HealthCheckResponse_SERVING, 15*time.Second)
	resp, err := e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"),
		Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/", MinRevision: upd.GetSettings().GetRevision()})
	if err != nil || !resp.GetDecision().GetAllowed() {
		t.Fatalf("after etcd came back, CheckFeature at the revision written meanwhile = %v, %v; want allowed", resp.GetDecision(), err)
	}
	// Writes go through again (a write that met the reconnection may be
	// refused once; the replica needs no restart).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(staleInterval) {
		_, err := e.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
			Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", Chat: true}, UpdateMask: mask("chat")})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin write after etcd came back: %v", err)
		}
		t.Logf("admin write after etcd came back: %v", err)
	}
}
