package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// TestElector_OnePerPrefix: stores on one prefix elect one leader between
// them; a store on another prefix (another deployment) elects its own;
// the election's keys do not disturb the store's data.
func TestElector_OnePerPrefix(t *testing.T) {
	srv := etcdtest.Start(t)
	a1, a2 := open(t, srv, "/one/"), open(t, srv, "/one/")
	other := open(t, srv, "/two/")
	ctx, cancel := context.WithCancel(context.Background())
	var leadingOne, leadingTwo atomic.Int32
	done := make(chan struct{}, 3)
	run := func(el interface {
		Run(context.Context, func(context.Context))
	}, n *atomic.Int32) {
		defer func() { done <- struct{}{} }()
		el.Run(ctx, func(lctx context.Context) {
			n.Add(1)
			<-lctx.Done()
			n.Add(-1)
		})
	}
	go run(a1.Elector(time.Second, "a1", nil), &leadingOne)
	go run(a2.Elector(time.Second, "a2", nil), &leadingOne)
	go run(other.Elector(time.Second, "b", nil), &leadingTwo)
	deadline := time.Now().Add(5 * time.Second)
	for (leadingOne.Load() != 1 || leadingTwo.Load() != 1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if leadingOne.Load() != 1 || leadingTwo.Load() != 1 {
		t.Fatalf("leaders: %d on /one/, %d on /two/; want one each", leadingOne.Load(), leadingTwo.Load())
	}
	// The store under the prefix holds what it held: the election's keys
	// are not among its keys.
	if _, err := a1.Update(context.Background(), func(tx store.Tx) error { return tx.Put("k", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := a2.View(context.Background(), func(tx store.ReadTx) error {
		return tx.Scan("", "", func(k string, _ []byte, _ uint64) (bool, error) { keys = append(keys, k); return true, nil })
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "k" {
		t.Errorf("keys under /one/ = %q; want just k", keys)
	}
	cancel()
	for range 3 {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("an elector did not stop")
		}
	}
}

// TestElector_DeposedLeaderWriteIsFenced: two replicas (stores with
// clients of their own) on one etcd. The leader's work holds a write
// back — as a leader paused by its garbage collector or SIGSTOP would —
// while its lease is revoked; the other replica takes over and its write
// commits; then the old leader's pending write is refused with
// store.ErrFenced and commits nothing, whether the old leader has noticed
// the end of its term or not (a paused process has not: the fence's
// election key, compared by etcd in the commit, refuses it).
func TestElector_DeposedLeaderWriteIsFenced(t *testing.T) {
	srv := etcdtest.Start(t)
	for _, noticed := range []bool{true, false} {
		t.Run(fmt.Sprintf("noticed=%v", noticed), func(t *testing.T) {
			prefix := fmt.Sprintf("/fenced-%v/", noticed)
			a, b := open(t, srv, prefix), open(t, srv, prefix)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type term struct {
				ctx     context.Context
				release chan struct{}
				result  chan error
			}
			lead := func(s *etcd.Store, name string, terms chan<- term) {
				s.Elector(time.Second, name, nil).Run(ctx, func(lctx context.Context) {
					tm := term{ctx: lctx, release: make(chan struct{}), result: make(chan error, 1)}
					terms <- tm
					select {
					case <-tm.release:
					case <-ctx.Done():
						return
					}
					wctx := context.WithoutCancel(lctx)
					if !noticed {
						// A process paused since before its term ended
						// has not closed Lost.
						f, ok := store.FenceOf(lctx)
						if !ok {
							tm.result <- errors.New("no fence on the leader's context")
							return
						}
						f.Lost = nil
						wctx = store.WithFence(context.Background(), f)
					}
					_, err := s.Update(wctx, func(tx store.Tx) error { return tx.Put("work", []byte(name)) })
					tm.result <- err
				})
			}
			aTerms, bTerms := make(chan term, 4), make(chan term, 4)
			go lead(a, "a", aTerms)
			var old term
			select {
			case old = <-aTerms:
			case <-time.After(10 * time.Second):
				t.Fatal("a did not lead")
			}
			f, ok := store.FenceOf(old.ctx)
			if !ok || f.Key == "" || f.Rev == 0 {
				t.Fatalf("the leader's context carries fence %+v, %v; want the election key and revision", f, ok)
			}
			go lead(b, "b", bTerms)
			// Depose a: its lease revoked from outside, as when it expires.
			resp, err := b.Client().Get(context.Background(), f.Key)
			if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != f.Rev {
				t.Fatalf("election key %s = %v, %v; want it created at %d", f.Key, resp, err, f.Rev)
			}
			if _, err := b.Client().Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
				t.Fatal(err)
			}
			var next term
			select {
			case next = <-bTerms:
			case <-time.After(10 * time.Second):
				t.Fatal("b did not take over")
			}
			close(next.release)
			if err := <-next.result; err != nil {
				t.Fatalf("the new leader's write: %v", err)
			}
			close(old.release)
			select {
			case err := <-old.result:
				if !errors.Is(err, store.ErrFenced) {
					t.Fatalf("the deposed leader's write = %v; want store.ErrFenced", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the deposed leader's write did not return")
			}
			if got := string(storetest.MustGet(t, a, "work")); got != "b" {
				t.Errorf("work = %q; want b (the deposed leader committed)", got)
			}
		})
	}
}
