package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// MustUpdate runs fn in an Update and fails the test on error. It returns
// the revision Update reported.
func MustUpdate(t testing.TB, s store.Store, fn func(store.Tx) error) uint64 {
	t.Helper()
	rev, err := s.Update(context.Background(), fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return rev
}

// MustView runs fn in a View and fails the test on error.
func MustView(t testing.TB, s store.Store, fn func(store.ReadTx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// MustPut writes key/value pairs (kv alternates key and value) in one
// transaction and returns its revision.
func MustPut(t testing.TB, s store.Store, kv ...string) uint64 {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("MustPut: odd number of arguments %q", kv)
	}
	return MustUpdate(t, s, func(tx store.Tx) error {
		for i := 0; i < len(kv); i += 2 {
			if err := tx.Put(kv[i], []byte(kv[i+1])); err != nil {
				return fmt.Errorf("put %q: %w", kv[i], err)
			}
		}
		return nil
	})
}

// MustDelete deletes keys in one transaction and returns its revision.
func MustDelete(t testing.TB, s store.Store, keys ...string) uint64 {
	t.Helper()
	return MustUpdate(t, s, func(tx store.Tx) error {
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return fmt.Errorf("delete %q: %w", k, err)
			}
		}
		return nil
	})
}

// Get returns a copy of key's value, or the error of ReadTx.Get.
func Get(t testing.TB, s store.Store, key string) ([]byte, error) {
	t.Helper()
	var out []byte
	var gerr error
	MustView(t, s, func(tx store.ReadTx) error {
		v, _, err := tx.Get(key)
		out, gerr = bytes.Clone(v), err
		return nil
	})
	return out, gerr
}

// MustGet returns a copy of key's value and fails the test when it cannot.
func MustGet(t testing.TB, s store.Store, key string) []byte {
	t.Helper()
	v, err := Get(t, s, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

// MustNotExist fails the test unless key is absent.
func MustNotExist(t testing.TB, s store.Store, key string) {
	t.Helper()
	v, err := Get(t, s, key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
	}
}

// Changes returns ReadTx.Changes(after) read in a View of its own.
func Changes(t testing.TB, s store.Store, after uint64) ([]store.Change, error) {
	t.Helper()
	var cs []store.Change
	var cerr error
	MustView(t, s, func(tx store.ReadTx) error {
		cs, cerr = tx.Changes(after)
		return nil
	})
	return cs, cerr
}

// MustChanges returns Changes(rev) and fails the test on error.
func MustChanges(t testing.TB, s store.Store, rev uint64) []store.Change {
	t.Helper()
	cs, err := Changes(t, s, rev)
	if err != nil {
		t.Fatalf("Changes(%d): %v", rev, err)
	}
	return cs
}

// MustScan returns the keys and values Scan yields.
func MustScan(t testing.TB, s store.Store, prefix, startAfter string) (keys, vals []string) {
	t.Helper()
	MustView(t, s, func(tx store.ReadTx) error {
		return tx.Scan(prefix, startAfter, func(k string, v []byte, _ uint64) (bool, error) {
			keys = append(keys, k)
			vals = append(vals, string(v))
			return true, nil
		})
	})
	return keys, vals
}

// MustNoNewChanges fails the test unless Changes(rev) is empty.
func MustNoNewChanges(t testing.TB, s store.Store, rev uint64) {
	t.Helper()
	if cs := MustChanges(t, s, rev); len(cs) != 0 {
		t.Fatalf("Changes(%d) = %+v; want none", rev, cs)
	}
}

func sortedKeys(c store.Change) []string {
	ks := slices.Clone(c.Keys)
	slices.Sort(ks)
	return ks
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// errRollback rolls back the first run of an Interleaved Update.
var errRollback = errors.New("rolled back to run again")

// interleaved is a store.Store whose Updates conflict with a concurrent
// writer once; see Interleaved.
type interleaved struct {
	store.Store
	between func()
}

// Interleaved wraps s so that every Update runs its function once and
// rolls it back, calls between (the commit of a concurrent writer, made
// through s), then runs the function again and commits: what a driver with
// optimistic concurrency does when what a write read changed before its
// commit. Tests use it to check that a write's outcome is that of its last
// run.
func Interleaved(s store.Store, between func()) store.Store {
	return interleaved{Store: s, between: between}
}

func (s interleaved) Update(ctx context.Context, fn func(store.Tx) error) (uint64, error) {
	_, err := s.Store.Update(ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		return 0, err
	}
	s.between()
	return s.Store.Update(ctx, fn)
}
