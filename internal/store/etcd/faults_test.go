package etcd_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// TestPausedMember: an etcd member that stops answering without closing
// its connections (SIGSTOP: a hung machine, a partition that drops
// packets) holds no request, and no watch, for longer than the client's
// keepalive. Stores whose endpoints are that member and a live one keep
// committing, and each one's watch goes on reporting the others' commits.
func TestPausedMember(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	victim := (cl.Leader(t, 10*time.Second) + 1) % 3 // a follower: no election
	live := (victim + 1) % 3
	eps := []string{cl.Members[victim].Client, cl.Members[live].Client}
	openOn := func() *etcd.Store {
		s, err := etcd.Open(context.Background(), etcd.Options{Endpoints: eps, Prefix: "/paused/"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	w := openOn()
	// Several watchers: the client picks the member a watch runs on, so
	// some of them watch through the member that will hang.
	watchers := make([]*etcd.Store, 4)
	for i := range watchers {
		watchers[i] = openOn()
	}
	put := func(ctx context.Context, k string) (uint64, error) {
		return w.Update(ctx, func(tx store.Tx) error { return tx.Put(k, []byte("v")) })
	}
	awaitWatchers := func(rev uint64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for i, s := range watchers {
			for s.Revision() < rev {
				if time.Now().After(deadline) {
					t.Fatalf("watcher %d is at revision %d %v after commit %d", i, s.Revision(), within, rev)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	rev, err := put(context.Background(), "before")
	if err != nil {
		t.Fatal(err)
	}
	awaitWatchers(rev, 10*time.Second)

	// The bound: the keepalive's ping interval and timeout, and slack.
	bound := etcd.KeepAliveTime + etcd.KeepAliveTimeout + 5*time.Second
	cl.Pause(victim)
	defer cl.Resume(victim)
	paused := time.Now()
	var slowest time.Duration
	for i := 0; i < 10; i++ {
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		r, err := put(ctx, fmt.Sprint("during-", i))
		cancel()
		took := time.Since(began)
		slowest = max(slowest, took)
		switch {
		case err == nil:
			rev = r
		case took >= bound:
			t.Fatalf("a write was held %v by the paused member: %v", took, err)
		default:
			// The connection to the paused member was closed under the
			// commit: it may or may not have landed; the caller retries.
			t.Logf("write %d failed after %v: %v", i, took, err)
		}
	}
	awaitWatchers(rev, bound)
	t.Logf("with a member paused: slowest write %v, every watcher at revision %d %v after the pause", slowest, rev, time.Since(paused).Round(time.Millisecond))
}
