package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// leaderMetric matches the gatehouse_leader sample of a metrics page.
var leaderMetric = regexp.MustCompile(`(?m)^gatehouse_leader (\d)$`)

// leading returns d's gatehouse_leader value ("" when absent).
func leading(t *testing.T, d *daemon) string {
	t.Helper()
	m := leaderMetric.FindStringSubmatch(scrape(t, d))
	if m == nil {
		return ""
	}
	return m[1]
}

// awaitOneLeader waits until exactly one of ds reports gatehouse_leader 1
// and every other 0, and returns it.
func awaitOneLeader(t *testing.T, within time.Duration, ds ...*daemon) *daemon {
	t.Helper()
	deadline := time.Now().Add(within)
	var got []string
	for time.Now().Before(deadline) {
		got = got[:0]
		var leader *daemon
		ones := 0
		for _, d := range ds {
			v := leading(t, d)
			got = append(got, v)
			if v == "1" {
				ones++
				leader = d
			}
		}
		if ones == 1 && strings.Count(strings.Join(got, ""), "0") == len(ds)-1 {
			return leader
		}
		if ones > 1 {
			t.Fatalf("gatehouse_leader = %v: more than one leader", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gatehouse_leader = %v after %v; want one 1 and the rest 0", got, within)
	return nil
}

// TestE2E_EtcdLeaderFailover: of two daemons on one etcd exactly one
// leads (runs the session sweeper and the notification sender); when it
// is stopped, or killed without a chance to resign, the other takes over
// within the lease TTL.
func TestE2E_EtcdLeaderFailover(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second // etcd grants no lease shorter than 2s with its default timing
	srv := etcdtest.Start(t)
	args := func() []string {
		return loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints, ","),
			"--etcd-prefix", "/e2e/", "--etcd-leader-ttl", ttl.String(), "--metrics-addr", "127.0.0.1:0")
	}
	a := start(t, nil, args()...)
	b := start(t, nil, args()...)
	first := awaitOneLeader(t, 10*time.Second, a, b)
	first.mustLog("leadership gained: running the session sweeper and the notification sender")
	second := b
	if first == b {
		second = a
	}
	// Killed: no resignation; the lease expires within the TTL.
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.awaitExit(exitTimeout)
	killed := time.Now()
	awaitOneLeader(t, 2*ttl+2*time.Second, second)
	t.Logf("took over %v after the leader was killed (TTL %v)", time.Since(killed), ttl)
	second.awaitLog("leadership gained: running the session sweeper and the notification sender")

	// Stopped: it resigns, and a new daemon takes over at once.
	c := start(t, nil, args()...)
	if awaitOneLeader(t, 5*time.Second, second, c) != second {
		t.Fatal("the leadership moved to a newcomer")
	}
	stopped := time.Now()
	second.stop()
	awaitOneLeader(t, ttl, c)
	t.Logf("took over %v after the leader stopped", time.Since(stopped))
	c.stop()
}

// TestE2E_BoltAlwaysLeads: a daemon on its own bbolt file is the only
// process of its store, so it leads from the start.
func TestE2E_BoltAlwaysLeads(t *testing.T) {
	t.Parallel()
	d := start(t, nil, loopbackArgs(t.TempDir(), "--metrics-addr", "127.0.0.1:0")...)
	awaitOneLeader(t, 5*time.Second, d)
	d.stop()
}

// TestE2E_EtcdNotificationsFollowTheLeader: a session ended on a follower
// is delivered by the leader's sender only (into the leader's outbox
// directory); after the leader is killed, the next session's notification
// is delivered by the replica that took over.
func TestE2E_EtcdNotificationsFollowTheLeader(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	dirs := map[*daemon]string{}
	launchOne := func() *daemon {
		data := t.TempDir()
		d := start(t, nil, loopbackArgs(data, "--demo", "--store", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints, ","),
			"--etcd-prefix", "/e2e/", "--etcd-leader-ttl", "2s", "--metrics-addr", "127.0.0.1:0")...)
		dirs[d] = filepath.Join(data, "outbox")
		return d
	}
	a := launchOne()
	b := launchOne()
	lead := awaitOneLeader(t, 10*time.Second, a, b)
	follower := a
	if lead == a {
		follower = b
	}
	c := dial(t, follower.addr)
	ctx := testContext(t)
	endSession := func(customer string) string {
		t.Helper()
		resp, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
			RepresentativeId: "bob", CustomerId: customer, PortalId: "helpdesk-default"})
		if err != nil {
			t.Fatal(err)
		}
		id := resp.GetSession().GetId()
		if _, err := c.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: id, CustomerRating: 5}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// delivered reports which of the daemons' outbox directories hold a
	// record of session id, waiting until one does.
	delivered := func(id string) []*daemon {
		t.Helper()
		for deadline := time.Now().Add(testTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			var in []*daemon
			for d, dir := range dirs {
				files, _ := filepath.Glob(filepath.Join(dir, "*"+id+"*.xml"))
				if len(files) > 0 {
					in = append(in, d)
				}
			}
			if len(in) > 0 {
				return in
			}
		}
		t.Fatalf("the notification of session %s was not delivered", id)
		return nil
	}
	if in := delivered(endSession("cust-1")); len(in) != 1 || in[0] != lead {
		t.Fatalf("delivered by %d daemons (the leader among them: %v); want the leader only", len(in), len(in) == 1 && in[0] == lead)
	}
	if err := lead.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	lead.awaitExit(exitTimeout)
	id := endSession("cust-2")
	if in := delivered(id); len(in) != 1 || in[0] != follower {
		t.Fatalf("after the leader died, session %s was delivered by %d daemons; want the replica that took over", id, len(in))
	}
	follower.stop()
}
