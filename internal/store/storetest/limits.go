// Operation limits: a driver declares how many keys and bytes one
// transaction may write (store.Limits), and refuses more without
// committing anything.

package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// mustRefuse runs fn, which must fail with want, and checks that nothing
// was committed.
func mustRefuse(t *testing.T, s store.Store, want error, fn func(tx store.Tx) error) {
	t.Helper()
	before := s.Revision()
	_, err := s.Update(context.Background(), fn)
	if !errors.Is(err, want) {
		t.Fatalf("Update error = %v; want %v", err, want)
	}
	if got := s.Revision(); got != before {
		t.Errorf("Revision() = %d after a refused Update; want %d", got, before)
	}
	MustNoNewChanges(t, s, before)
}

func putN(prefix string, n int) func(tx store.Tx) error {
	return func(tx store.Tx) error {
		for i := range n {
			if err := tx.Put(fmt.Sprintf("%s/%05d", prefix, i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	}
}

// testOperationLimits checks Limits().MaxOps: exactly MaxOps keys commit,
// one more is ErrTooManyOps and commits nothing; rewriting a key counts
// once; deleting a missing key counts not at all. A driver without a bound
// commits a transaction of 2 000 keys.
func testOperationLimits(t *testing.T, s store.Store) {
	n := s.Limits().MaxOps
	if n <= 0 {
		MustUpdate(t, s, putN("big", 2000))
		if keys, _ := MustScan(t, s, "big/", ""); len(keys) != 2000 {
			t.Errorf("%d keys after a 2 000-key transaction", len(keys))
		}
		return
	}
	t.Run("at the limit", func(t *testing.T) {
		rev := MustUpdate(t, s, putN("at", n))
		if keys, _ := MustScan(t, s, "at/", ""); len(keys) != n {
			t.Errorf("%d keys after a %d-key transaction", len(keys), n)
		}
		cs := MustChanges(t, s, rev-1)
		if len(cs) == 0 || len(cs[len(cs)-1].Keys) != n {
			t.Errorf("Changes of a %d-key commit = %+v", n, cs)
		}
	})
	t.Run("one over", func(t *testing.T) {
		mustRefuse(t, s, store.ErrTooManyOps, putN("over", n+1))
		MustNotExist(t, s, "over/00000")
	})
	t.Run("deletes count", func(t *testing.T) {
		mustRefuse(t, s, store.ErrTooManyOps, func(tx store.Tx) error {
			if err := tx.Put("extra", []byte("x")); err != nil {
				return err
			}
			for i := range n {
				if err := tx.Delete(fmt.Sprintf("at/%05d", i)); err != nil {
					return err
				}
			}
			return nil
		})
		if keys, _ := MustScan(t, s, "at/", ""); len(keys) != n {
			t.Errorf("%d keys left after a refused delete; want %d", len(keys), n)
		}
	})
	t.Run("rewrites count once", func(t *testing.T) {
		MustUpdate(t, s, func(tx store.Tx) error {
			for range 3 {
				if err := putN("re", n)(tx); err != nil {
					return err
				}
			}
			return nil
		})
	})
	t.Run("deleting missing keys counts nothing", func(t *testing.T) {
		MustUpdate(t, s, func(tx store.Tx) error {
			for i := range n + 10 {
				if err := tx.Delete(fmt.Sprintf("missing/%05d", i)); err != nil {
					return err
				}
			}
			return putN("after-missing", n)(tx)
		})
	})
}

// testSizeLimits checks Limits().MaxTxnBytes: keys and values of exactly
// that many bytes commit, one byte more is ErrTxnTooLarge and commits
// nothing.
func testSizeLimits(t *testing.T, s store.Store) {
	max := s.Limits().MaxTxnBytes
	if max <= 0 {
		t.Skip("the driver declares no size bound")
	}
	const k1, k2 = "size/a", "size/b"
	half := max / 2
	fits := func(extra int) func(tx store.Tx) error {
		return func(tx store.Tx) error {
			if err := tx.Put(k1, bytes.Repeat([]byte{'a'}, half-len(k1))); err != nil {
				return err
			}
			return tx.Put(k2, bytes.Repeat([]byte{'b'}, max-half-len(k2)+extra))
		}
	}
	mustRefuse(t, s, store.ErrTxnTooLarge, fits(1))
	MustNotExist(t, s, k1)
	MustUpdate(t, s, fits(0))
	if got := MustGet(t, s, k2); len(got) != max-half-len(k2) {
		t.Errorf("%s holds %d bytes; want %d", k2, len(got), max-half-len(k2))
	}
}
