package etcd_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
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
