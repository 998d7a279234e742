package replica_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// Freshness timing of the etcd replicas below: the store confirms every
// interval; a replica in touch with etcd is never more than a few
// intervals stale, one cut off grows past many.
const (
	interval   = 50 * time.Millisecond
	reqTimeout = 500 * time.Millisecond
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestReplica_BoltIsNeverStale: the bbolt file is the store itself; its
// replica's staleness is 0 however long nothing happens.
func TestReplica_BoltIsNeverStale(t *testing.T) {
	t.Parallel()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r, err := replica.New(context.Background(), st, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if r.TracksStaleness() {
		t.Error("a bbolt replica tracks staleness")
	}
	if s := r.Staleness(time.Now().Add(time.Hour)); s != 0 {
		t.Errorf("Staleness an hour on = %v; want 0", s)
	}
}

// awaitStaleness waits until cond holds for r's staleness.
func awaitStaleness(t *testing.T, r *replica.Replica, what string, within time.Duration, cond func(time.Duration) bool) time.Duration {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := r.Staleness(time.Now())
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("staleness %v after %v; want %s", s, within, what)
		}
		time.Sleep(interval / 5)
	}
}

// TestReplica_StalenessOfACutOffReplica: a replica on etcd stays fresh
// while etcd answers, even with no commit; cut off, its staleness grows
// with the time since, and the commits made meanwhile by another replica
// are not in its snapshot; back in touch, it applies them and is fresh
// again, without a restart.
func TestReplica_StalenessOfACutOffReplica(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	proxy := etcdtest.StartProxy(t, srv.Endpoints[0])
	open := func(endpoint string) *etcd.Store {
		s, err := etcd.Open(context.Background(), etcd.Options{Endpoints: []string{endpoint}, Prefix: "/replica-stale/",
			FreshnessInterval: interval, RequestTimeout: reqTimeout})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	cut, direct := open(proxy.Addr), open(srv.Endpoints[0])
	ctx, cancel := context.WithCancel(context.Background())
	r, err := replica.New(ctx, cut, quiet())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if !r.TracksStaleness() {
		t.Fatal("an etcd replica does not track staleness")
	}
	fresh := func(s time.Duration) bool { return s < 10*interval }
	// Quiet for many intervals: the store's own reads keep it fresh.
	time.Sleep(20 * interval)
	awaitStaleness(t, r, "fresh while etcd answers", 5*time.Second, fresh)

	proxy.Cut()
	cutAt := time.Now()
	rev, err := direct.Update(context.Background(), func(tx store.Tx) error {
		return store.PutAccount(tx, &policy.Account{ID: "acme", DisplayName: "Acme"})
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * interval)
	s := r.Staleness(time.Now())
	if since := time.Since(cutAt); s < since-5*interval || s > since+10*interval {
		t.Errorf("staleness %v, %v after the cut; want about the time since the cut", s, since)
	}
	if r.Current().Revision() >= rev || r.Current().Account("acme") != nil {
		t.Fatalf("the cut-off replica has the commit made meanwhile (snapshot at %d)", r.Current().Revision())
	}

	proxy.Restore()
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	snap, err := r.WaitFor(wctx, rev)
	if err != nil {
		t.Fatalf("the replica did not catch up with revision %d after etcd came back: %v", rev, err)
	}
	if snap.Account("acme") == nil {
		t.Error("caught-up snapshot lacks the account")
	}
	awaitStaleness(t, r, "fresh again", 5*time.Second, fresh)
}
