//go:build unix

package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// stalenessMetric matches the gatehouse_snapshot_staleness_seconds sample.
var stalenessMetric = regexp.MustCompile(`(?m)^gatehouse_snapshot_staleness_seconds (\S+)$`)

// staleness returns d's gatehouse_snapshot_staleness_seconds.
func staleness(t *testing.T, d *daemon) float64 {
	t.Helper()
	m := stalenessMetric.FindStringSubmatch(scrape(t, d))
	if m == nil {
		t.Fatal("no gatehouse_snapshot_staleness_seconds sample")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// healthz returns the HTTP status of GET /healthz on d's metrics address.
func healthz(t *testing.T, d *daemon) int {
	t.Helper()
	m := d.awaitLog("serving metrics")
	resp, err := http.Get(fmt.Sprintf("http://%s/healthz", m["metrics_addr"]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// awaitHealth waits until the whole daemon and its DecisionService report
// want on gRPC health.
func awaitHealth(ctx context.Context, t *testing.T, c *clients, want healthpb.HealthCheckResponse_ServingStatus, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var got []string
		for _, svc := range []string{"", "gatehouse.v1.DecisionService"} {
			resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				t.Fatalf("health Check(%q): %v", svc, err)
			}
			if resp.GetStatus() != want {
				got = append(got, fmt.Sprintf("%q=%v", svc, resp.GetStatus()))
			}
		}
		if len(got) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health %v after %v; want %v", got, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2E_EtcdAllMembersDown: two replicas on a three-member etcd cluster
// of real processes. With every member stopped (two killed, one paused:
// refused and silent connections), the replicas keep answering decisions
// from their snapshots, the same answers as before, within
// --max-staleness; admin writes are UNAVAILABLE (STORE_UNAVAILABLE) after
// the bounded request wait, or the caller's shorter deadline; a third
// replica stopped meanwhile exits cleanly; past the
// bound health reports NOT_SERVING (gRPC and /healthz), decisions are
// UNAVAILABLE (SNAPSHOT_STALE) and the staleness gauge is past it. With
// the members back, both replicas report SERVING again without a
// restart, and a write on one is decided on by the other at its
// revision.
func TestE2E_EtcdAllMembersDown(t *testing.T) {
	t.Parallel()
	const bound = 3 * time.Second
	cluster := etcdtest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	args := func() []string {
		return loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", strings.Join(cluster.Endpoints(), ","),
			"--etcd-prefix", "/down/", "--max-staleness", bound.String(), "--etcd-leader-ttl", "2s", "--metrics-addr", "127.0.0.1:0")
	}
	a, b := start(t, nil, args()...), start(t, nil, args()...)
	// c is stopped while etcd is down.
	c := start(t, nil, args()...)
	ca, cb := dial(t, a.addr), dial(t, b.addr)
	if _, err := ca.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true}, UpdateMask: mask("agent_click_restricted")}); err != nil {
		t.Fatal(err)
	}
	started, err := ca.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme",
		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
	if err != nil {
		t.Fatal(err)
	}
	sess, rev := started.GetSession().GetId(), started.GetSession().GetRevision()
	decideBoth := func() {
		t.Helper()
		for _, c := range []*clients{ca, cb} {
			req := click(sess, agent("alice"))
			req.MinRevision = rev
			checkDecision(ctx, t, c, req, false, gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, "agent_click_restricted")
			checkDecision(ctx, t, c, click(sess, customer("cust-1")), true, gatehousev1.Reason_REASON_ALLOWED, "")
		}
	}
	decideBoth()
	awaitHealth(ctx, t, ca, healthpb.HealthCheckResponse_SERVING, 5*time.Second)
	awaitHealth(ctx, t, cb, healthpb.HealthCheckResponse_SERVING, 5*time.Second)

	cluster.Kill(0)
	cluster.Kill(1)
	cluster.Pause(2)
	down := time.Now()
	t.Cleanup(func() { cluster.Resume(2) })
	decideBoth()
	if d := time.Since(down); d >= bound {
		t.Fatalf("the decisions within the bound took %v", d)
	}
	t.Logf("decisions answered from the snapshots %v after etcd went down", time.Since(down))

	// Admin writes: UNAVAILABLE after the bounded wait for etcd.
	start := time.Now()
	_, err = ca.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", Chat: true}, UpdateMask: mask("chat")})
	if st := wantCode(t, "UpdateLiveGuideSettings with etcd down", err, codes.Unavailable); errorInfo(t, st).GetReason() != "STORE_UNAVAILABLE" {
		t.Errorf("reason %q; want STORE_UNAVAILABLE", errorInfo(t, st).GetReason())
	}
	t.Logf("admin write refused after %v", time.Since(start))
	start = time.Now()
	if code := c.terminate(); code != 0 {
		t.Errorf("a replica stopped while etcd is down exited %d; want 0", code)
	}
	t.Logf("a replica stopped in %v while etcd was down", time.Since(start))
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the admin write was refused after %v; want the 5s request timeout", d)
	}
	short, scancel := context.WithTimeout(ctx, time.Second)
	start = time.Now()
	_, err = cb.sessions.StartSession(short, &gatehousev1.StartSessionRequest{AccountId: "acme",
		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-2"})
	scancel()
	wantCode(t, "StartSession with a 1s deadline and etcd down", err, codes.DeadlineExceeded)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("StartSession with a 1s deadline returned after %v", d)
	}

	// Past the bound.
	for _, c := range []*clients{ca, cb} {
		awaitHealth(ctx, t, c, healthpb.HealthCheckResponse_NOT_SERVING, bound+10*time.Second)
		_, err := c.decide.CheckFeature(ctx, click(sess, customer("cust-1")))
		if st := wantCode(t, "CheckFeature past the bound", err, codes.Unavailable); errorInfo(t, st).GetReason() != "SNAPSHOT_STALE" {
			t.Errorf("reason %q; want SNAPSHOT_STALE", errorInfo(t, st).GetReason())
		}
	}
	// The data's age counts from the last confirmation before etcd went
	// down, a --max-staleness/10 interval or so earlier.
	if d := time.Since(down); d < bound-time.Second {
		t.Errorf("NOT_SERVING %v after etcd went down, well before the bound %v", d, bound)
	}
	for _, d := range []*daemon{a, b} {
		if s := staleness(t, d); s <= bound.Seconds() {
			t.Errorf("gatehouse_snapshot_staleness_seconds %v past the bound", s)
		}
		if code := healthz(t, d); code != http.StatusServiceUnavailable {
			t.Errorf("/healthz past the bound: %d; want 503", code)
		}
	}
	a.awaitLog("snapshot older than --max-staleness: the store has not confirmed it; refusing decisions and reporting NOT_SERVING until it catches up")

	cluster.Restart(0)
	cluster.Restart(1)
	cluster.Resume(2)
	back := time.Now()
	cluster.WaitHealthy(t, 30*time.Second)
	for _, c := range []*clients{ca, cb} {
		awaitHealth(ctx, t, c, healthpb.HealthCheckResponse_SERVING, 30*time.Second)
	}
	t.Logf("both replicas SERVING %v after the members were restarted", time.Since(back))
	for _, d := range []*daemon{a, b} {
		if code := healthz(t, d); code != http.StatusOK {
			t.Errorf("/healthz after etcd came back: %d; want 200", code)
		}
	}
	upd, err := ca.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: false}, UpdateMask: mask("agent_click_restricted")})
	if err != nil {
		t.Fatalf("admin write after etcd came back: %v", err)
	}
	req := click(sess, agent("alice"))
	req.MinRevision = upd.GetSettings().GetRevision()
	checkDecision(ctx, t, cb, req, true, gatehousev1.Reason_REASON_ALLOWED, "")
	a.stop()
	b.stop()
}
