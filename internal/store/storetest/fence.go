// Fences: a write made under a term of leadership (store.WithFence)
// commits only while the term lasts. Every driver refuses it once the
// holder knows the term is over; drivers that several processes share
// check more (the etcd driver's own tests cover the election key).

package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// testFenceHeld: a fenced write commits while its term lasts, like any
// other; the fence survives context.WithoutCancel (the notification sender
// records a delivery with it); reads are never fenced.
func testFenceHeld(t *testing.T, s store.Store) {
	lost := make(chan struct{})
	ctx := store.WithFence(context.Background(), store.Fence{Lost: lost})
	rev, err := s.Update(ctx, func(tx store.Tx) error { return tx.Put("k", []byte("v1")) })
	if err != nil || rev == 0 {
		t.Fatalf("fenced Update while held = %d, %v", rev, err)
	}
	if _, err := s.Update(context.WithoutCancel(ctx), func(tx store.Tx) error { return tx.Put("k", []byte("v2")) }); err != nil {
		t.Fatalf("fenced Update (WithoutCancel) while held: %v", err)
	}
	if got := string(MustGet(t, s, "k")); got != "v2" {
		t.Errorf("k = %q; want v2", got)
	}
	close(lost)
	if err := s.View(ctx, func(tx store.ReadTx) error { _, _, err := tx.Get("k"); return err }); err != nil {
		t.Errorf("View under a lost fence: %v; reads are not fenced", err)
	}
}

// testFenceLost: once the holder knows its term is over, a fenced write
// fails with ErrFenced and commits nothing — also through a context
// derived with WithoutCancel — while unfenced writes go on.
func testFenceLost(t *testing.T, s store.Store) {
	MustPut(t, s, "k", "before")
	lost := make(chan struct{})
	ctx := store.WithFence(context.Background(), store.Fence{Lost: lost})
	close(lost)
	for name, c := range map[string]context.Context{"fenced": ctx, "WithoutCancel": context.WithoutCancel(ctx)} {
		before := s.Revision()
		_, err := s.Update(c, func(tx store.Tx) error {
			if err := tx.Put("k", []byte("after")); err != nil {
				return err
			}
			return tx.Put("new", []byte("x"))
		})
		if !errors.Is(err, store.ErrFenced) {
			t.Fatalf("%s: Update under a lost fence = %v; want ErrFenced", name, err)
		}
		if got := s.Revision(); got != before {
			t.Errorf("%s: Revision() = %d after a fenced-off Update; want %d", name, got, before)
		}
		MustNoNewChanges(t, s, before)
	}
	if got := string(MustGet(t, s, "k")); got != "before" {
		t.Errorf("k = %q after fenced-off writes; want before", got)
	}
	MustNotExist(t, s, "new")
	MustPut(t, s, "k", "unfenced")
	if got := string(MustGet(t, s, "k")); got != "unfenced" {
		t.Errorf("an unfenced write after a lost fence: k = %q", got)
	}
}

// testFenceLostDuringUpdate: a term that ends while the write's function
// runs (its reads done, its writes buffered) commits nothing: the driver
// checks the fence at the commit, not only before the function.
func testFenceLostDuringUpdate(t *testing.T, s store.Store) {
	MustPut(t, s, "k", "before")
	before := s.Revision()
	lost := make(chan struct{})
	var once sync.Once
	ctx := store.WithFence(context.Background(), store.Fence{Lost: lost})
	_, err := s.Update(ctx, func(tx store.Tx) error {
		if _, _, err := tx.Get("k"); err != nil {
			return err
		}
		if err := tx.Put("k", []byte("after")); err != nil {
			return err
		}
		once.Do(func() { close(lost) })
		return nil
	})
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("Update whose fence was lost during its function = %v; want ErrFenced", err)
	}
	if got := s.Revision(); got != before {
		t.Errorf("Revision() = %d; want %d", got, before)
	}
	MustNoNewChanges(t, s, before)
	if got := string(MustGet(t, s, "k")); got != "before" {
		t.Errorf("k = %q; want before", got)
	}
}
