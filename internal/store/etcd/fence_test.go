package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// termKey puts key under a new lease of c, as an election does, and
// returns the fence of that term (whose holder never learns it ended:
// Lost is nil) and the lease.
func termKey(t *testing.T, c *clientv3.Client, key string) (store.Fence, clientv3.LeaseID) {
	t.Helper()
	ctx := context.Background()
	lease, err := c.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Put(ctx, key, "leader", clientv3.WithLease(lease.ID))
	if err != nil {
		t.Fatal(err)
	}
	return store.Fence{Key: key, Rev: resp.Header.Revision}, lease.ID
}

// fencedWrites are the kinds of write a leader makes: one guarded by the
// mod revisions of the keys it read, and one that scanned (guarded by
// the store's head key).
var fencedWrites = map[string]func(val string) func(tx store.Tx) error{
	"reads": func(val string) func(tx store.Tx) error {
		return func(tx store.Tx) error {
			if _, _, err := tx.Get("k"); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return tx.Put("k", []byte(val))
		}
	},
	"scan": func(val string) func(tx store.Tx) error {
		return func(tx store.Tx) error {
			if err := tx.Scan("", "", func(string, []byte, uint64) (bool, error) { return true, nil }); err != nil {
				return err
			}
			return tx.Put("k", []byte(val))
		}
	},
}

// TestFence_DeposedLeaderCommitsNothing: a write under the fence of a
// term commits while the term's key exists; once the key is gone (its
// lease revoked: the leader deposed without knowing it) or replaced by a
// key of the same name from a later term, the write fails with
// store.ErrFenced at once — not retried as a conflict — and commits
// nothing, while unfenced writes and a fence of the live term commit.
func TestFence_DeposedLeaderCommitsNothing(t *testing.T) {
	srv := etcdtest.Start(t)
	for name, write := range fencedWrites {
		t.Run(name, func(t *testing.T) {
			s := open(t, srv, "")
			other := open(t, srv, "")
			key := fmt.Sprintf("/fence-test/%s/leader", name)
			fence, lease := termKey(t, other.Client(), key)
			ctx := store.WithFence(context.Background(), fence)
			if _, err := s.Update(ctx, write("held")); err != nil {
				t.Fatalf("write under a live term: %v", err)
			}
			if _, err := other.Client().Revoke(context.Background(), lease); err != nil {
				t.Fatal(err)
			}
			deposed := func(when string) {
				t.Helper()
				before := s.Revision()
				start := time.Now()
				_, err := s.Update(ctx, write("deposed"))
				if !errors.Is(err, store.ErrFenced) {
					t.Fatalf("%s: write under an ended term = %v; want ErrFenced", when, err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("%s: the refusal took %v (retried as a conflict?)", when, d)
				}
				storetest.MustNoNewChanges(t, s, before)
				if got := string(storetest.MustGet(t, s, "k")); got != "held" {
					t.Fatalf("%s: k = %q; want held", when, got)
				}
			}
			deposed("key gone")
			// A later term that happens to use the same key has another
			// create revision.
			next, _ := termKey(t, other.Client(), key)
			deposed("key of a later term")
			if _, err := s.Update(store.WithFence(context.Background(), next), write("next term")); err != nil {
				t.Fatalf("write under the later term: %v", err)
			}
			if _, err := s.Update(context.Background(), write("unfenced")); err != nil {
				t.Fatalf("unfenced write: %v", err)
			}
		})
	}
}

// TestFence_ConflictsStillRetry: a fenced write whose reads changed before
// its commit runs again and commits (the fence is not mistaken for a
// conflict, nor a conflict for a lost term); a term that ends between a
// run and the commit fails with ErrFenced.
func TestFence_ConflictsStillRetry(t *testing.T) {
	srv := etcdtest.Start(t)
	s := open(t, srv, "")
	fence, lease := termKey(t, s.Client(), "/fence-test/retry/leader")
	ctx := store.WithFence(context.Background(), fence)
	storetest.MustPut(t, s, "n", "0")
	incr := func(tx store.Tx) error {
		v, _, err := tx.Get("n")
		if err != nil {
			return err
		}
		return tx.Put("n", append(v, '+'))
	}
	var once sync.Once
	conflicting := storetest.Interleaved(s, func() { once.Do(func() { storetest.MustPut(t, s, "n", "1") }) })
	if _, err := conflicting.Update(ctx, incr); err != nil {
		t.Fatalf("fenced write after a conflict: %v", err)
	}
	if got := string(storetest.MustGet(t, s, "n")); got != "1+" {
		t.Fatalf("n = %q; want 1+ (the last run's write)", got)
	}
	// The term ends between the function's run and the commit.
	ending := storetest.Interleaved(s, func() {
		if _, err := s.Client().Revoke(context.Background(), lease); err != nil {
			t.Error(err)
		}
	})
	if _, err := ending.Update(ctx, incr); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("write whose term ended before its commit = %v; want ErrFenced", err)
	}
	if got := string(storetest.MustGet(t, s, "n")); got != "1+" {
		t.Errorf("n = %q; want 1+", got)
	}
}

// TestFence_ManyReadsFitTheCompareLimit: a fenced write that read as many
// keys as etcd lets one transaction compare still commits: the fence's
// comparison counts toward the limit (the write falls back to the head
// key's guard).
func TestFence_ManyReadsFitTheCompareLimit(t *testing.T) {
	srv := etcdtest.Start(t)
	s := open(t, srv, "")
	fence, _ := termKey(t, s.Client(), "/fence-test/many/leader")
	n := etcd.DefaultMaxTxnOps
	_, err := s.Update(store.WithFence(context.Background(), fence), func(tx store.Tx) error {
		for i := range n {
			if _, _, err := tx.Get(fmt.Sprintf("r/%04d", i)); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return tx.Put("k", []byte("v"))
	})
	if err != nil {
		t.Fatalf("fenced write that read %d keys: %v", n, err)
	}
}
