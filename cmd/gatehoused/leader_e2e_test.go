package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

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
