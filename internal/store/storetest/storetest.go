// Package storetest is the conformance suite every store.Store driver must
// pass, and small helpers for driver tests.
//
// A driver test calls Run with a function that opens a fresh, empty store
// and arranges (with t.Cleanup) for it to be closed when the test ends.
// Closing an already closed store must not panic.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Wait bounds every wait for something another goroutine or the driver
// must do.
const Wait = 10 * time.Second

// quiet is how long a test watches for a signal that must not come.
const quiet = 100 * time.Millisecond

var errBoom = errors.New("boom")

// Run runs the conformance suite. open must return a fresh, empty store
// that is closed when t ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"PutGetDelete", testPutGetDelete},
		{"PutDoesNotRetainValue", testPutDoesNotRetainValue},
		{"UpdateBumpsRevision", testUpdateBumpsRevision},
		{"FailedUpdateCommitsNothing", testFailedUpdateCommitsNothing},
		{"EmptyUpdateKeepsRevision", testEmptyUpdateKeepsRevision},
		{"Scan", testScan},
		{"ScanStopsAndPropagatesErrors", testScanStops},
		{"TxRevision", testTxRevision},
		{"Changes", testChanges},
		{"Subscribe", testSubscribe},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ViewIsConsistent", testViewIsConsistent},
		{"CancelledContext", testCancelledContext},
		{"CloseWaitsForTransactions", testCloseWaits},
		{"UseAfterClose", testUseAfterClose},
		{"Accounts", testAccounts},
		{"DeleteAccount", testDeleteAccount},
		{"LoadAccount", testLoadAccount},
		{"ParseKey", testParseKey},
		{"ChangedKeysParse", testChangedKeysParse},
		{"Sessions", testSessions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			tc.fn(t, s)
		})
	}
}

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
		v, err := tx.Get(key)
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

// MustChanges returns Changes(rev) and fails the test on error.
func MustChanges(t testing.TB, s store.Store, rev uint64) []store.Change {
	t.Helper()
	cs, err := s.Changes(rev)
	if err != nil {
		t.Fatalf("Changes(%d): %v", rev, err)
	}
	return cs
}

// MustScan returns the keys and values Scan yields.
func MustScan(t testing.TB, s store.Store, prefix, startAfter string) (keys, vals []string) {
	t.Helper()
	MustView(t, s, func(tx store.ReadTx) error {
		return tx.Scan(prefix, startAfter, func(k string, v []byte) (bool, error) {
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

func testPutGetDelete(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		key  string
		val  []byte
	}{
		{"simple", "a", []byte("1")},
		{"nested", "t/acme/rep/r1", []byte(`{"id":"r1"}`)},
		{"empty value", "empty", []byte{}},
		{"nil value", "nil", nil},
		{"binary value", "bin", []byte{0, 1, 2, 0xff, 0}},
		{"unicode key", "k/é/ü", []byte("ü")},
		{"long key", "long/" + string(bytes.Repeat([]byte("x"), 500)), []byte("long")},
		{"large value", "large", bytes.Repeat([]byte("0123456789"), 10000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			MustUpdate(t, s, func(tx store.Tx) error {
				if err := tx.Put(tc.key, tc.val); err != nil {
					return err
				}
				got, err := tx.Get(tc.key)
				if err != nil {
					t.Errorf("Get in the writing tx: %v", err)
				} else if !bytes.Equal(got, tc.val) {
					t.Errorf("Get in the writing tx = %q; want %q", got, tc.val)
				}
				return nil
			})
			if got, err := Get(t, s, tc.key); err != nil || !bytes.Equal(got, tc.val) {
				t.Errorf("Get after commit = %q, %v; want %q", got, err, tc.val)
			}
			MustUpdate(t, s, func(tx store.Tx) error {
				if err := tx.Delete(tc.key); err != nil {
					return err
				}
				if _, err := tx.Get(tc.key); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Get in the deleting tx: err = %v; want ErrNotFound", err)
				}
				return nil
			})
			MustNotExist(t, s, tc.key)
		})
	}

	t.Run("overwrite", func(t *testing.T) {
		MustPut(t, s, "ow", "1")
		MustPut(t, s, "ow", "2")
		if got := MustGet(t, s, "ow"); string(got) != "2" {
			t.Errorf("Get = %q; want 2", got)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		MustNotExist(t, s, "missing")
		MustNotExist(t, s, "")
	})
	t.Run("delete missing key", func(t *testing.T) {
		rev := s.Revision()
		_, err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Delete("never-there") })
		if err != nil {
			t.Errorf("Delete of a missing key: %v", err)
		}
		MustNotExist(t, s, "never-there")
		if got := s.Revision(); got != rev {
			t.Errorf("Revision after deleting a missing key = %d; want %d", got, rev)
		}
	})
	for _, v := range []struct {
		name string
		val  []byte
	}{{"value", []byte("v")}, {"empty value", []byte{}}, {"nil value", nil}} {
		t.Run("put "+v.name+" then delete in one tx", func(t *testing.T) {
			MustUpdate(t, s, func(tx store.Tx) error {
				if err := tx.Put("pd", v.val); err != nil {
					return err
				}
				return tx.Delete("pd")
			})
			MustNotExist(t, s, "pd")
		})
	}
}

// A caller may reuse its buffer once Put returns.
func testPutDoesNotRetainValue(t *testing.T, s store.Store) {
	MustUpdate(t, s, func(tx store.Tx) error {
		buf := []byte("one")
		if err := tx.Put("k1", buf); err != nil {
			return err
		}
		copy(buf, "two")
		return tx.Put("k2", buf)
	})
	if got := MustGet(t, s, "k1"); string(got) != "one" {
		t.Errorf("k1 = %q after the caller reused the buffer passed to Put; want %q", got, "one")
	}
	if got := MustGet(t, s, "k2"); string(got) != "two" {
		t.Errorf("k2 = %q; want %q", got, "two")
	}
}

func testUpdateBumpsRevision(t *testing.T, s store.Store) {
	prev := s.Revision()
	for i, kv := range [][]string{
		{"a", "1"},
		{"a", "2", "b", "2"},
		{"c", "3", "d", "3", "e", "3"},
		{"a", "4"},
	} {
		rev := MustPut(t, s, kv...)
		if rev <= prev {
			t.Errorf("commit %d: revision %d; want > %d", i, rev, prev)
		}
		if got := s.Revision(); got != rev {
			t.Errorf("commit %d: Revision() = %d; want %d", i, got, rev)
		}
		prev = rev
	}
	rev := MustDelete(t, s, "a")
	if rev <= prev {
		t.Errorf("delete: revision %d; want > %d", rev, prev)
	}
	if got := s.Revision(); got != rev {
		t.Errorf("delete: Revision() = %d; want %d", got, rev)
	}
}

func testFailedUpdateCommitsNothing(t *testing.T, s store.Store) {
	MustPut(t, s, "keep", "v", "other", "o")
	tests := []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"error before writing", func(tx store.Tx) error { return errBoom }},
		{"put then error", func(tx store.Tx) error {
			if err := tx.Put("new", []byte("x")); err != nil {
				return err
			}
			return errBoom
		}},
		{"overwrite then error", func(tx store.Tx) error {
			if err := tx.Put("keep", []byte("changed")); err != nil {
				return err
			}
			return fmt.Errorf("wrapped: %w", errBoom)
		}},
		{"delete then error", func(tx store.Tx) error {
			if err := tx.Delete("keep"); err != nil {
				return err
			}
			return errBoom
		}},
		{"many writes then error", func(tx store.Tx) error {
			for i := range 100 {
				if err := tx.Put(fmt.Sprintf("new/%03d", i), []byte("x")); err != nil {
					return err
				}
			}
			if err := tx.Delete("other"); err != nil {
				return err
			}
			return errBoom
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Revision()
			_, err := s.Update(context.Background(), tc.fn)
			if !errors.Is(err, errBoom) {
				t.Fatalf("Update error = %v; want %v", err, errBoom)
			}
			if got := s.Revision(); got != before {
				t.Errorf("Revision() = %d after a failed Update; want %d", got, before)
			}
			MustNoNewChanges(t, s, before)
			MustNotExist(t, s, "new")
			MustNotExist(t, s, "new/000")
			if got := MustGet(t, s, "keep"); string(got) != "v" {
				t.Errorf("keep = %q; want v", got)
			}
			if got := MustGet(t, s, "other"); string(got) != "o" {
				t.Errorf("other = %q; want o", got)
			}
			MustView(t, s, func(tx store.ReadTx) error {
				if got := tx.Revision(); got != before {
					t.Errorf("View revision = %d after a failed Update; want %d", got, before)
				}
				return nil
			})
		})
	}

	t.Run("next commit", func(t *testing.T) {
		before := s.Revision()
		rev := MustPut(t, s, "after", "1")
		if rev <= before {
			t.Errorf("revision %d; want > %d", rev, before)
		}
		cs := MustChanges(t, s, before)
		if len(cs) != 1 || cs[0].Revision != rev || !slices.Equal(cs[0].Keys, []string{"after"}) {
			t.Errorf("Changes(%d) = %+v; want one change {%d [after]}", before, cs, rev)
		}
	})
}

func testEmptyUpdateKeepsRevision(t *testing.T, s store.Store) {
	MustPut(t, s, "a", "1")
	tests := []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"nothing", func(store.Tx) error { return nil }},
		{"reads only", func(tx store.Tx) error {
			if _, err := tx.Get("a"); err != nil {
				return err
			}
			return tx.Scan("", "", func(string, []byte) (bool, error) { return true, nil })
		}},
		{"deletes a missing key", func(tx store.Tx) error { return tx.Delete("missing") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Revision()
			ch, cancel := s.Subscribe()
			defer cancel()
			rev, err := s.Update(context.Background(), tc.fn)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if rev != before {
				t.Errorf("Update returned %d; want the current revision %d", rev, before)
			}
			if got := s.Revision(); got != before {
				t.Errorf("Revision() = %d; want %d", got, before)
			}
			MustNoNewChanges(t, s, before)
			select {
			case <-ch:
				t.Errorf("Subscribe signalled for an Update that wrote nothing")
			case <-time.After(quiet):
			}
		})
	}
}

func testScan(t *testing.T, s store.Store) {
	MustPut(t, s,
		"a", "a",
		"a/1", "1",
		"a/2", "2",
		"a/3", "3",
		"a/é", "e",
		"a0", "a0",
		"ab", "ab",
		"b/1", "b1",
		"b/2", "b2",
	)
	all := []string{"a", "a/1", "a/2", "a/3", "a/é", "a0", "ab", "b/1", "b/2"}
	tests := []struct {
		name       string
		prefix     string
		startAfter string
		want       []string
	}{
		{"everything", "", "", all},
		{"prefix", "a/", "", []string{"a/1", "a/2", "a/3", "a/é"}},
		{"prefix is a key", "a", "", []string{"a", "a/1", "a/2", "a/3", "a/é", "a0", "ab"}},
		{"prefix matches nothing", "c/", "", nil},
		{"prefix sorts between keys", "a/10", "", nil},
		{"start after a present key", "a/", "a/1", []string{"a/2", "a/3", "a/é"}},
		{"start after a missing key", "a/", "a/15", []string{"a/2", "a/3", "a/é"}},
		{"start after the last key", "a/", "a/é", nil},
		{"start after the prefix itself", "a/", "a/", []string{"a/1", "a/2", "a/3", "a/é"}},
		{"start after sorts before the prefix", "b/", "a", []string{"b/1", "b/2"}},
		{"start after sorts after every match", "a/", "a0", nil},
		{"start after sorts after the prefix range", "a/", "b", nil},
		{"start after a missing key before the first match", "b/", "b/0", []string{"b/1", "b/2"}},
		{"no prefix, start after", "", "a0", []string{"ab", "b/1", "b/2"}},
		{"no prefix, start after a missing key", "", "aa", []string{"ab", "b/1", "b/2"}},
		{"no prefix, start after everything", "", "z", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, vals := MustScan(t, s, tc.prefix, tc.startAfter)
			if !slices.Equal(keys, tc.want) {
				t.Errorf("Scan(%q, %q) = %q; want %q", tc.prefix, tc.startAfter, keys, tc.want)
			}
			for i, k := range keys {
				want, err := Get(t, s, k)
				if err != nil || string(want) != vals[i] {
					t.Errorf("Scan yielded %q=%q; Get = %q, %v", k, vals[i], want, err)
				}
			}
		})
	}

	t.Run("sees the writing tx", func(t *testing.T) {
		MustUpdate(t, s, func(tx store.Tx) error {
			if err := tx.Put("b/15", []byte("new")); err != nil {
				return err
			}
			if err := tx.Delete("b/2"); err != nil {
				return err
			}
			var got []string
			err := tx.Scan("b/", "", func(k string, _ []byte) (bool, error) {
				got = append(got, k)
				return true, nil
			})
			if want := []string{"b/1", "b/15"}; !slices.Equal(got, want) {
				t.Errorf("Scan in the writing tx = %q; want %q", got, want)
			}
			return err
		})
	})
}

func testScanStops(t *testing.T, s store.Store) {
	var kv []string
	for i := range 10 {
		kv = append(kv, fmt.Sprintf("k/%02d", i), strconv.Itoa(i))
	}
	MustPut(t, s, kv...)
	tests := []struct {
		name    string
		stopAt  int // the call that returns false or the error
		err     error
		wantErr error
	}{
		{"stop at first", 1, nil, nil},
		{"stop at fifth", 5, nil, nil},
		{"stop at last", 10, nil, nil},
		{"error at first", 1, errBoom, errBoom},
		{"error at seventh", 7, fmt.Errorf("wrapped: %w", errBoom), errBoom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			var scanErr error
			MustView(t, s, func(tx store.ReadTx) error {
				scanErr = tx.Scan("k/", "", func(string, []byte) (bool, error) {
					calls++
					if calls == tc.stopAt {
						return false, tc.err
					}
					return true, nil
				})
				return nil
			})
			if calls != tc.stopAt {
				t.Errorf("fn called %d times; want %d", calls, tc.stopAt)
			}
			if !errors.Is(scanErr, tc.wantErr) || (tc.wantErr == nil && scanErr != nil) {
				t.Errorf("Scan error = %v; want %v", scanErr, tc.wantErr)
			}
		})
	}

	t.Run("error with true", func(t *testing.T) {
		calls := 0
		var scanErr error
		MustView(t, s, func(tx store.ReadTx) error {
			scanErr = tx.Scan("k/", "", func(string, []byte) (bool, error) {
				calls++
				return true, errBoom
			})
			return nil
		})
		if calls != 1 || !errors.Is(scanErr, errBoom) {
			t.Errorf("fn called %d times, Scan error %v; want 1 call and %v", calls, scanErr, errBoom)
		}
	})

	t.Run("View returns fn's error", func(t *testing.T) {
		err := s.View(context.Background(), func(tx store.ReadTx) error {
			return tx.Scan("k/", "", func(string, []byte) (bool, error) { return false, errBoom })
		})
		if !errors.Is(err, errBoom) {
			t.Errorf("View error = %v; want %v", err, errBoom)
		}
	})
}

func testTxRevision(t *testing.T, s store.Store) {
	MustView(t, s, func(tx store.ReadTx) error {
		if got, want := tx.Revision(), s.Revision(); got != want {
			t.Errorf("View on an empty store: tx.Revision() = %d; want Revision() = %d", got, want)
		}
		return nil
	})
	for i := range 3 {
		var inTx uint64
		rev := MustUpdate(t, s, func(tx store.Tx) error {
			inTx = tx.Revision()
			return tx.Put("k", []byte(strconv.Itoa(i)))
		})
		if inTx != rev {
			t.Errorf("commit %d: tx.Revision() = %d inside Update; Update returned %d", i, inTx, rev)
		}
		MustView(t, s, func(tx store.ReadTx) error {
			if got, want := tx.Revision(), s.Revision(); got != want || got != rev {
				t.Errorf("commit %d: View tx.Revision() = %d; want Revision() = %d = %d", i, got, want, rev)
			}
			return nil
		})
	}

	// The typed helpers stamp records with the commit's revision.
	a := policy.Account{ID: "acme", DisplayName: "Acme"}
	rev := MustUpdate(t, s, func(tx store.Tx) error { return store.PutAccount(tx, &a) })
	if a.Revision != rev {
		t.Errorf("PutAccount stamped %d; commit revision %d", a.Revision, rev)
	}
	MustView(t, s, func(tx store.ReadTx) error {
		got, err := store.GetAccount(tx, "acme")
		if err != nil || got.Revision != rev {
			t.Errorf("GetAccount = %+v, %v; want revision %d", got, err, rev)
		}
		return nil
	})
}

func testChanges(t *testing.T, s store.Store) {
	base := s.Revision()
	if cs, err := s.Changes(base); err != nil || cs != nil {
		t.Errorf("Changes(%d) on an up-to-date store = %+v, %v; want nil, nil", base, cs, err)
	}

	type commit struct {
		fn   func(tx store.Tx) error
		keys []string // sorted
	}
	put := func(k string) func(store.Tx) error {
		return func(tx store.Tx) error { return tx.Put(k, []byte(k)) }
	}
	del := func(k string) func(store.Tx) error {
		return func(tx store.Tx) error { return tx.Delete(k) }
	}
	seq := func(fns ...func(store.Tx) error) func(store.Tx) error {
		return func(tx store.Tx) error {
			for _, fn := range fns {
				if err := fn(tx); err != nil {
					return err
				}
			}
			return nil
		}
	}
	commits := []commit{
		{seq(put("b"), put("a")), []string{"a", "b"}},
		{seq(put("a"), put("a"), put("c"), put("a")), []string{"a", "c"}},
		{seq(del("b"), put("d"), del("b")), []string{"b", "d"}},
		{seq(del("a"), del("missing")), []string{"a"}},
		{seq(put("e"), del("e")), []string{"e"}},
	}
	var revs []uint64
	for _, c := range commits {
		revs = append(revs, MustUpdate(t, s, c.fn))
	}

	for from := range commits {
		rev := base
		if from > 0 {
			rev = revs[from-1]
		}
		cs := MustChanges(t, s, rev)
		if len(cs) != len(commits)-from {
			t.Errorf("Changes(%d) returned %d changes; want %d: %+v", rev, len(cs), len(commits)-from, cs)
			continue
		}
		for i, c := range cs {
			want := commits[from+i]
			if c.Revision != revs[from+i] {
				t.Errorf("Changes(%d)[%d].Revision = %d; want %d", rev, i, c.Revision, revs[from+i])
			}
			if got := sortedKeys(c); !slices.Equal(got, want.keys) {
				t.Errorf("Changes(%d)[%d].Keys = %q; want %q (deduplicated, deletions included)", rev, i, c.Keys, want.keys)
			}
		}
	}
	last := revs[len(revs)-1]
	if cs, err := s.Changes(last); err != nil || cs != nil {
		t.Errorf("Changes(%d) when up to date = %+v, %v; want nil, nil", last, cs, err)
	}

	t.Run("inside View", func(t *testing.T) {
		MustView(t, s, func(tx store.ReadTx) error {
			cs := MustChanges(t, s, base)
			if len(cs) == 0 || cs[len(cs)-1].Revision < tx.Revision() {
				t.Errorf("Changes(%d) inside a View at %d = %+v; want it to reach %d", base, tx.Revision(), cs, tx.Revision())
			}
			return nil
		})
	})

	t.Run("returned slice is the caller's", func(t *testing.T) {
		cs := MustChanges(t, s, base)
		cs[0].Keys[0] = "scribbled"
		cs[0].Revision = 0
		again := MustChanges(t, s, base)
		if again[0].Revision != revs[0] || slices.Contains(again[0].Keys, "scribbled") {
			t.Errorf("changing a returned Change altered the store's record: %+v", again[0])
		}
	})
}

func testSubscribe(t *testing.T, s store.Store) {
	ch1, cancel1 := s.Subscribe()
	defer cancel1()
	ch2, cancel2 := s.Subscribe()
	defer cancel2()

	MustPut(t, s, "a", "1")
	for i, ch := range []<-chan struct{}{ch1, ch2} {
		select {
		case <-ch:
		case <-time.After(Wait):
			t.Fatalf("subscriber %d: no signal within %v after a commit", i+1, Wait)
		}
	}

	t.Run("coalesced", func(t *testing.T) {
		for i := range 5 {
			MustPut(t, s, "a", strconv.Itoa(i))
		}
		select {
		case <-ch1:
		case <-time.After(Wait):
			t.Fatalf("no signal within %v after 5 commits", Wait)
		}
	})

	t.Run("late subscriber", func(t *testing.T) {
		ch, cancel := s.Subscribe()
		defer cancel()
		select {
		case <-ch:
			t.Errorf("a new subscription signalled before any commit")
		case <-time.After(quiet):
		}
		MustPut(t, s, "b", "1")
		select {
		case <-ch:
		case <-time.After(Wait):
			t.Fatalf("no signal within %v after a commit", Wait)
		}
	})

	t.Run("cancel stops signals", func(t *testing.T) {
		cancel2()
		drain(ch2)
		MustPut(t, s, "c", "1")
		select {
		case _, ok := <-ch2:
			if ok {
				t.Errorf("cancelled subscription still signalled")
			}
		case <-time.After(quiet):
		}
		cancel2() // a second call is harmless
		// ch1 is still subscribed.
		select {
		case <-ch1:
		case <-time.After(Wait):
			t.Fatalf("remaining subscriber: no signal within %v", Wait)
		}
	})
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

func testConcurrentUpdates(t *testing.T, s store.Store) {
	const (
		writers = 8
		commits = 50
	)
	MustPut(t, s, "counter", "0")
	start := s.Revision()

	revs := make([][]uint64, writers)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range commits {
				var inTx uint64
				rev, err := s.Update(context.Background(), func(tx store.Tx) error {
					inTx = tx.Revision()
					v, err := tx.Get("counter")
					if err != nil {
						return err
					}
					n, err := strconv.Atoi(string(v))
					if err != nil {
						return err
					}
					if err := tx.Put("counter", []byte(strconv.Itoa(n+1))); err != nil {
						return err
					}
					return tx.Put(fmt.Sprintf("w/%d/%03d", w, i), []byte("x"))
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d commit %d: %w", w, i, err)
					return
				}
				if rev != inTx {
					errs <- fmt.Errorf("writer %d commit %d: Update returned %d, tx.Revision() was %d", w, i, rev, inTx)
					return
				}
				revs[w] = append(revs[w], rev)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	var all []uint64
	for w, rs := range revs {
		for i := 1; i < len(rs); i++ {
			if rs[i] <= rs[i-1] {
				t.Errorf("writer %d: revision %d after %d; want strictly increasing", w, rs[i], rs[i-1])
			}
		}
		all = append(all, rs...)
	}
	slices.Sort(all)
	if len(slices.Compact(slices.Clone(all))) != len(all) {
		t.Errorf("duplicate revisions among %d commits", len(all))
	}
	if all[0] <= start {
		t.Errorf("first revision %d; want > %d", all[0], start)
	}
	if got, want := s.Revision(), all[len(all)-1]; got != want {
		t.Errorf("Revision() = %d; want the last commit's %d", got, want)
	}
	if got := string(MustGet(t, s, "counter")); got != strconv.Itoa(writers*commits) {
		t.Errorf("counter = %s; want %d (lost writes)", got, writers*commits)
	}
	keys, _ := MustScan(t, s, "w/", "")
	if len(keys) != writers*commits {
		t.Errorf("%d keys under w/; want %d", len(keys), writers*commits)
	}

	cs := MustChanges(t, s, start)
	var got []uint64
	for _, c := range cs {
		got = append(got, c.Revision)
		if len(c.Keys) != 2 || !slices.Contains(c.Keys, "counter") {
			t.Errorf("change %d keys %q; want counter and one w/ key", c.Revision, c.Keys)
		}
	}
	if !slices.Equal(got, all) {
		t.Errorf("Changes(%d) revisions = %v; want the committed %v", start, got, all)
	}
}

func testViewIsConsistent(t *testing.T, s store.Store) {
	const (
		commits = 200
		readers = 4
	)
	base := s.Revision()
	write := func(tx store.Tx) error {
		v := []byte(strconv.FormatUint(tx.Revision(), 10))
		if err := tx.Put("pair/x", v); err != nil {
			return err
		}
		return tx.Put("pair/y", v)
	}
	MustUpdate(t, s, write)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, readers+1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		for i := range commits {
			if _, err := s.Update(context.Background(), write); err != nil {
				errs <- fmt.Errorf("writer commit %d: %w", i, err)
				return
			}
		}
	})
	views := make([]int, readers)
	for r := range readers {
		wg.Go(func() {
			var last uint64
			// Every reader reads at least once, however fast the writer is.
			for first := true; first || ctx.Err() == nil; first = false {
				err := s.View(context.Background(), func(tx store.ReadTx) error {
					x, err := tx.Get("pair/x")
					if err != nil {
						return fmt.Errorf("get x: %w", err)
					}
					y, err := tx.Get("pair/y")
					if err != nil {
						return fmt.Errorf("get y: %w", err)
					}
					if !bytes.Equal(x, y) {
						return fmt.Errorf("x = %s, y = %s in one View", x, y)
					}
					rev := tx.Revision()
					if string(x) != strconv.FormatUint(rev, 10) {
						return fmt.Errorf("View at revision %d reads a pair written at %s", rev, x)
					}
					if rev < last {
						return fmt.Errorf("View revision went back from %d to %d", last, rev)
					}
					last = rev
					var scanned [][]byte
					if err := tx.Scan("pair/", "", func(_ string, v []byte) (bool, error) {
						scanned = append(scanned, bytes.Clone(v))
						return true, nil
					}); err != nil {
						return err
					}
					if len(scanned) != 2 || !bytes.Equal(scanned[0], x) || !bytes.Equal(scanned[1], x) {
						return fmt.Errorf("Scan in a View at %d = %q; want both %s", rev, scanned, x)
					}
					cs, err := s.Changes(base)
					if err != nil {
						return fmt.Errorf("Changes(%d) inside View: %w", base, err)
					}
					if len(cs) == 0 || cs[len(cs)-1].Revision < rev {
						return fmt.Errorf("Changes(%d) inside a View at %d ends before it: %d changes", base, rev, len(cs))
					}
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					cancel()
					return
				}
				views[r]++
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(6 * Wait):
		t.Fatalf("readers and writer did not finish within %v", 6*Wait)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("views per reader: %v", views)
}

func testCancelledContext(t *testing.T, s store.Store) {
	MustPut(t, s, "keep", "v")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	tests := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"deadline exceeded", expired, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Revision()
			_, err := s.Update(tc.ctx, func(tx store.Tx) error {
				if err := tx.Put("new", []byte("x")); err != nil {
					return err
				}
				return tx.Delete("keep")
			})
			if !errors.Is(err, tc.want) {
				t.Errorf("Update error = %v; want %v", err, tc.want)
			}
			if got := s.Revision(); got != before {
				t.Errorf("Revision() = %d; want %d", got, before)
			}
			MustNoNewChanges(t, s, before)
			MustNotExist(t, s, "new")
			if got := MustGet(t, s, "keep"); string(got) != "v" {
				t.Errorf("keep = %q; want v", got)
			}

			err = s.View(tc.ctx, func(store.ReadTx) error { return nil })
			if !errors.Is(err, tc.want) {
				t.Errorf("View error = %v; want %v", err, tc.want)
			}
		})
	}
}

func testCloseWaits(t *testing.T, s store.Store) {
	MustPut(t, s, "k", "v")
	started := make(chan struct{})
	release := make(chan struct{})
	viewDone := make(chan error, 1)
	updateDone := make(chan error, 1)
	go func() {
		viewDone <- s.View(context.Background(), func(tx store.ReadTx) error {
			started <- struct{}{}
			<-release
			v, err := tx.Get("k")
			if err == nil && string(v) != "v" {
				err = fmt.Errorf("k = %q; want v", v)
			}
			return err
		})
	}()
	go func() {
		_, err := s.Update(context.Background(), func(tx store.Tx) error {
			started <- struct{}{}
			<-release
			return tx.Put("k2", []byte("v2"))
		})
		updateDone <- err
	}()
	for range 2 {
		select {
		case <-started:
		case <-time.After(Wait):
			t.Fatalf("transactions did not start within %v", Wait)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor := map[string]chan error{"View": viewDone, "Update": updateDone, "Close": closed}
	select {
	case err := <-closed:
		t.Errorf("Close returned (%v) while transactions were running", err)
		delete(waitFor, "Close")
	case <-time.After(quiet):
	}
	close(release)
	for name, ch := range waitFor {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(Wait):
			t.Errorf("%s did not return within %v", name, Wait)
		}
	}
}

func testUseAfterClose(t *testing.T, s store.Store) {
	MustPut(t, s, "k", "v")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	called := false
	_, err := s.Update(context.Background(), func(tx store.Tx) error {
		called = true
		return tx.Put("k2", []byte("v"))
	})
	if !errors.Is(err, store.ErrClosed) {
		t.Errorf("Update after Close: error = %v; want ErrClosed", err)
	}
	if called {
		t.Errorf("Update after Close ran fn")
	}
	err = s.View(context.Background(), func(store.ReadTx) error {
		called = true
		return nil
	})
	if !errors.Is(err, store.ErrClosed) {
		t.Errorf("View after Close: error = %v; want ErrClosed", err)
	}
	if called {
		t.Errorf("View after Close ran fn")
	}
}

func account(id string) policy.Account {
	return policy.Account{
		ID:          id,
		DisplayName: "Account " + id,
		CobrowseURL: "https://" + id + ".example.com/",
		CreateTime:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// MustPutAccounts writes accounts in one transaction and returns them as
// stored (with their revision).
func MustPutAccounts(t testing.TB, s store.Store, ids ...string) []policy.Account {
	t.Helper()
	out := make([]policy.Account, len(ids))
	MustUpdate(t, s, func(tx store.Tx) error {
		for i, id := range ids {
			out[i] = account(id)
			if err := store.PutAccount(tx, &out[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return out
}

func accountIDs(as []policy.Account) []string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	return ids
}

func testAccounts(t *testing.T, s store.Store) {
	MustView(t, s, func(tx store.ReadTx) error {
		as, more, err := store.ListAccounts(tx, "", 0)
		if err != nil || len(as) != 0 || more {
			t.Errorf("ListAccounts on an empty store = %v, %v, %v", as, more, err)
		}
		ids, err := store.AccountIDs(tx)
		if err != nil || len(ids) != 0 {
			t.Errorf("AccountIDs on an empty store = %q, %v", ids, err)
		}
		if _, err := store.GetAccount(tx, "acme"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetAccount of a missing account: %v; want ErrNotFound", err)
		}
		return nil
	})

	stored := MustPutAccounts(t, s, "c", "a", "d", "ab", "a-b", "b")
	// Records under an account do not show up as accounts.
	MustUpdate(t, s, func(tx store.Tx) error {
		set := policy.DefaultLiveGuideSettings("a")
		return store.PutSettings(tx, &set)
	})
	byID := map[string]policy.Account{}
	for _, a := range stored {
		byID[a.ID] = a
	}
	sorted := []string{"a", "a-b", "ab", "b", "c", "d"}

	MustView(t, s, func(tx store.ReadTx) error {
		for _, id := range sorted {
			got, err := store.GetAccount(tx, id)
			if err != nil {
				t.Errorf("GetAccount(%q): %v", id, err)
				continue
			}
			if !reflect.DeepEqual(got, byID[id]) {
				t.Errorf("GetAccount(%q) = %+v; want %+v", id, got, byID[id])
			}
		}
		ids, err := store.AccountIDs(tx)
		if err != nil || !slices.Equal(ids, sorted) {
			t.Errorf("AccountIDs = %q, %v; want %q", ids, err, sorted)
		}
		return nil
	})

	tests := []struct {
		afterID  string
		limit    int
		want     []string
		wantMore bool
	}{
		{"", 0, sorted, false},
		{"", -1, sorted, false},
		{"", 6, sorted, false},
		{"", 7, sorted, false},
		{"", 5, sorted[:5], true},
		{"", 2, []string{"a", "a-b"}, true},
		{"", 1, []string{"a"}, true},
		{"a", 2, []string{"a-b", "ab"}, true},
		{"a-b", 2, []string{"ab", "b"}, true},
		{"b", 2, []string{"c", "d"}, false},
		{"c", 2, []string{"d"}, false},
		{"d", 2, nil, false},
		{"aa", 0, []string{"ab", "b", "c", "d"}, false},
		{"0", 2, []string{"a", "a-b"}, true},
		{"zzz", 0, nil, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("after %q limit %d", tc.afterID, tc.limit), func(t *testing.T) {
			MustView(t, s, func(tx store.ReadTx) error {
				as, more, err := store.ListAccounts(tx, tc.afterID, tc.limit)
				if err != nil {
					t.Fatalf("ListAccounts: %v", err)
				}
				if got := accountIDs(as); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
					t.Errorf("ids = %q; want %q", got, tc.want)
				}
				if more != tc.wantMore {
					t.Errorf("more = %v; want %v", more, tc.wantMore)
				}
				for _, a := range as {
					if !reflect.DeepEqual(a, byID[a.ID]) {
						t.Errorf("listed %+v; stored %+v", a, byID[a.ID])
					}
				}
				return nil
			})
		})
	}

	for limit := 1; limit <= 7; limit++ {
		t.Run(fmt.Sprintf("paging by %d", limit), func(t *testing.T) {
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > len(sorted) {
					t.Fatalf("paging does not end: %q", got)
				}
				var as []policy.Account
				var more bool
				MustView(t, s, func(tx store.ReadTx) (err error) {
					as, more, err = store.ListAccounts(tx, after, limit)
					return err
				})
				got = append(got, accountIDs(as)...)
				if !more {
					break
				}
				after = as[len(as)-1].ID
			}
			if !slices.Equal(got, sorted) {
				t.Errorf("paged ids = %q; want %q", got, sorted)
			}
		})
	}
}

func rep(id string, fns policy.Functions) policy.Representative {
	return policy.Representative{ID: id, DisplayName: "Rep " + id, TeamID: "team-1", Functions: fns, LiveGuideEnabled: true}
}

func session(acct, id, repID string, state policy.SessionState) policy.Session {
	s := policy.Session{
		ID:               id,
		AccountID:        acct,
		Kind:             policy.SessionKindLiveGuide,
		State:            state,
		RepresentativeID: repID,
		CustomerID:       "cust-" + id,
		StartTime:        time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
	}
	if state == policy.SessionStateEnded {
		s.EndTime = s.StartTime.Add(time.Hour)
		s.CustomerRating = 5
	}
	return s
}

// tenant is everything stored for one account.
type tenant struct {
	account  policy.Account
	settings *policy.LiveGuideSettings
	reps     []policy.Representative
	sessions []policy.Session
}

// mustPutTenant writes an account with settings (when custom is set), two
// representatives and three sessions, and returns what was stored.
func mustPutTenant(t testing.TB, s store.Store, id string, custom bool) tenant {
	t.Helper()
	tn := tenant{
		account: account(id),
		reps:    []policy.Representative{rep("r1", 3), rep("r2", 5)},
		sessions: []policy.Session{
			session(id, id+"-s1", "r1", policy.SessionStateActive),
			session(id, id+"-s2", "r1", policy.SessionStateEnded),
			session(id, id+"-s3", "r2", policy.SessionStateActive),
		},
	}
	tn.sessions[2].Specialists = []policy.Specialist{{ID: "sp1", DisplayName: "Specialist"}}
	if custom {
		set := policy.DefaultLiveGuideSettings(id)
		set.Chat, set.VoiceChat, set.ClipboardAgent = true, true, false
		set.SessionStartURL = "https://" + id + ".example.com/start"
		tn.settings = &set
	}
	MustUpdate(t, s, func(tx store.Tx) error {
		if err := store.PutAccount(tx, &tn.account); err != nil {
			return err
		}
		if tn.settings != nil {
			if err := store.PutSettings(tx, tn.settings); err != nil {
				return err
			}
		}
		// Written out of order; they come back in id order.
		for _, i := range []int{1, 0} {
			if err := store.PutRepresentative(tx, id, &tn.reps[i]); err != nil {
				return err
			}
		}
		for i := range tn.sessions {
			if err := store.PutSession(tx, &tn.sessions[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return tn
}

func (tn tenant) data() policy.AccountData {
	d := policy.AccountData{
		Account:         tn.account,
		Settings:        policy.DefaultLiveGuideSettings(tn.account.ID),
		Representatives: tn.reps,
	}
	if tn.settings != nil {
		d.Settings = *tn.settings
	}
	return d
}

func testLoadAccount(t *testing.T, s store.Store) {
	withSettings := mustPutTenant(t, s, "acme", true)
	defaults := mustPutTenant(t, s, "acme-2", false)
	bare := MustPutAccounts(t, s, "bare")[0]

	tests := []struct {
		name         string
		acct         string
		withSessions bool
		want         policy.AccountData
		wantSessions []policy.Session
		wantErr      error
	}{
		{"settings, no sessions", "acme", false, withSettings.data(), nil, nil},
		{"settings and sessions", "acme", true, withSettings.data(), withSettings.sessions, nil},
		{"default settings", "acme-2", true, defaults.data(), defaults.sessions, nil},
		{"no records", "bare", true, policy.AccountData{
			Account:  bare,
			Settings: policy.DefaultLiveGuideSettings("bare"),
		}, nil, nil},
		{"missing account", "acm", true, policy.AccountData{}, nil, store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			MustView(t, s, func(tx store.ReadTx) error {
				d, sessions, err := store.LoadAccount(tx, tc.acct, tc.withSessions)
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Fatalf("LoadAccount error = %v; want %v", err, tc.wantErr)
				}
				if tc.wantErr != nil {
					return nil
				}
				if !reflect.DeepEqual(d, tc.want) {
					t.Errorf("LoadAccount data =\n%+v\nwant\n%+v", d, tc.want)
				}
				if !reflect.DeepEqual(sessions, tc.wantSessions) {
					t.Errorf("LoadAccount sessions =\n%+v\nwant\n%+v", sessions, tc.wantSessions)
				}
				if !tc.withSessions && sessions != nil {
					t.Errorf("sessions loaded without withSessions: %+v", sessions)
				}
				return nil
			})
		})
	}
}

func testDeleteAccount(t *testing.T, s store.Store) {
	victim := mustPutTenant(t, s, "acme", true)
	// Neighbours whose ids share a prefix with the victim's.
	neighbours := []tenant{
		mustPutTenant(t, s, "acm", true),
		mustPutTenant(t, s, "acme-2", false),
		mustPutTenant(t, s, "acmea", true),
	}
	snapshot := func() map[string]string {
		keys, vals := MustScan(t, s, "", "")
		m := map[string]string{}
		for i, k := range keys {
			m[k] = vals[i]
		}
		return m
	}
	before := snapshot()

	rev := MustUpdate(t, s, func(tx store.Tx) error { return store.DeleteAccount(tx, "acme") })

	MustView(t, s, func(tx store.ReadTx) error {
		if _, err := store.GetAccount(tx, "acme"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetAccount after delete: %v; want ErrNotFound", err)
		}
		if _, err := store.GetSettings(tx, "acme"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSettings after delete: %v; want ErrNotFound", err)
		}
		for _, r := range victim.reps {
			if _, err := store.GetRepresentative(tx, "acme", r.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetRepresentative(%q) after delete: %v; want ErrNotFound", r.ID, err)
			}
		}
		for _, ss := range victim.sessions {
			if _, err := store.GetSession(tx, ss.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetSession(%q) after delete: %v; want ErrNotFound", ss.ID, err)
			}
			if ok, err := store.SessionExists(tx, ss.ID); ok || err != nil {
				t.Errorf("SessionExists(%q) after delete = %v, %v; want false", ss.ID, ok, err)
			}
		}
		if _, _, err := store.LoadAccount(tx, "acme", true); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LoadAccount after delete: %v; want ErrNotFound", err)
		}
		ids, err := store.AccountIDs(tx)
		if want := []string{"acm", "acme-2", "acmea"}; err != nil || !slices.Equal(ids, want) {
			t.Errorf("AccountIDs = %q, %v; want %q", ids, err, want)
		}
		for _, n := range neighbours {
			d, sessions, err := store.LoadAccount(tx, n.account.ID, true)
			if err != nil {
				t.Errorf("LoadAccount(%q): %v", n.account.ID, err)
				continue
			}
			if !reflect.DeepEqual(d, n.data()) || !reflect.DeepEqual(sessions, n.sessions) {
				t.Errorf("neighbour %q changed:\n%+v %+v\nwant\n%+v %+v", n.account.ID, d, sessions, n.data(), n.sessions)
			}
			for _, ss := range n.sessions {
				if got, err := store.GetSession(tx, ss.ID); err != nil || !reflect.DeepEqual(got, ss) {
					t.Errorf("GetSession(%q) = %+v, %v; want %+v", ss.ID, got, err, ss)
				}
			}
		}
		return nil
	})

	// Exactly the victim's keys are gone, and they are the change's keys.
	after := snapshot()
	var gone []string
	for k, v := range before {
		if av, ok := after[k]; !ok {
			gone = append(gone, k)
		} else if av != v {
			t.Errorf("key %q changed from %q to %q", k, v, av)
		}
	}
	if len(after)+len(gone) != len(before) {
		t.Errorf("%d keys after the delete, %d before, %d gone", len(after), len(before), len(gone))
	}
	slices.Sort(gone)
	var want []string
	for k := range before {
		info := store.ParseKey(k)
		id, isIndex := strings.CutPrefix(k, "sess/")
		if info.Account == "acme" || isIndex && slices.ContainsFunc(victim.sessions, func(ss policy.Session) bool { return ss.ID == id }) {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	if !slices.Equal(gone, want) {
		t.Errorf("deleted keys %q; want acme's %q", gone, want)
	}
	// account + settings + 2 reps + 3 sessions + 3 session index entries
	if len(gone) != 10 {
		t.Errorf("deleted %d keys %q; want 10", len(gone), gone)
	}
	cs := MustChanges(t, s, rev-1)
	if len(cs) != 1 || cs[0].Revision != rev || !slices.Equal(sortedKeys(cs[0]), gone) {
		t.Errorf("Changes of the delete = %+v; want {%d %q}", cs, rev, gone)
	}

	t.Run("missing account", func(t *testing.T) {
		before := s.Revision()
		_, err := s.Update(context.Background(), func(tx store.Tx) error { return store.DeleteAccount(tx, "acme") })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteAccount of a deleted account: %v; want ErrNotFound", err)
		}
		if got := s.Revision(); got != before {
			t.Errorf("Revision() = %d; want %d", got, before)
		}
	})
}

func testParseKey(t *testing.T, _ store.Store) {
	tests := []struct {
		key  string
		want store.KeyInfo
	}{
		{"acct/acme", store.KeyInfo{Account: "acme"}},
		{"acct/acme-2", store.KeyInfo{Account: "acme-2"}},
		{"t/acme/settings", store.KeyInfo{Account: "acme"}},
		{"t/acme/rep/r1", store.KeyInfo{Account: "acme"}},
		{"t/acme/session/s1", store.KeyInfo{Account: "acme", Session: "s1"}},
		{"t/acme-2/session/s-2", store.KeyInfo{Account: "acme-2", Session: "s-2"}},
		{"t/acme/sessions/s1", store.KeyInfo{Account: "acme"}},
		{"t/acme/rep/session", store.KeyInfo{Account: "acme"}},
		{"t/acme", store.KeyInfo{Account: "acme"}},
		{"sess/s1", store.KeyInfo{}},
		{"other/acme", store.KeyInfo{}},
		{"acct", store.KeyInfo{}},
		{"", store.KeyInfo{}},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			if got := store.ParseKey(tc.key); got != tc.want {
				t.Errorf("ParseKey(%q) = %+v; want %+v", tc.key, got, tc.want)
			}
		})
	}
}

// Every key the typed helpers write parses to its account (and session).
func testChangedKeysParse(t *testing.T, s store.Store) {
	base := s.Revision()
	tn := mustPutTenant(t, s, "acme", true)
	cs := MustChanges(t, s, base)
	if len(cs) != 1 {
		t.Fatalf("Changes(%d) = %+v; want one change", base, cs)
	}
	sessions := map[string]bool{}
	for _, ss := range tn.sessions {
		sessions[ss.ID] = true
	}
	accountKeys, sessionKeys := 0, 0
	for _, k := range cs[0].Keys {
		info := store.ParseKey(k)
		switch {
		case info.Session != "":
			sessionKeys++
			if info.Account != "acme" || !sessions[info.Session] {
				t.Errorf("ParseKey(%q) = %+v; want a session of acme", k, info)
			}
		case info.Account != "":
			accountKeys++
			if info.Account != "acme" {
				t.Errorf("ParseKey(%q) = %+v; want account acme", k, info)
			}
		}
	}
	// account, settings, two representatives; three session records.
	if accountKeys != 4 || sessionKeys != 3 {
		t.Errorf("keys %q: %d account keys, %d session keys; want 4 and 3", cs[0].Keys, accountKeys, sessionKeys)
	}
}

func testSessions(t *testing.T, s store.Store) {
	MustView(t, s, func(tx store.ReadTx) error {
		if ok, err := store.SessionExists(tx, "acme-s1"); ok || err != nil {
			t.Errorf("SessionExists on an empty store = %v, %v", ok, err)
		}
		if _, err := store.GetSession(tx, "acme-s1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSession on an empty store: %v; want ErrNotFound", err)
		}
		return nil
	})
	acme := mustPutTenant(t, s, "acme", true)
	other := mustPutTenant(t, s, "other", false)
	// One more active session of acme's r1, and an ended one of r2.
	extra := []policy.Session{
		session("acme", "acme-s4", "r1", policy.SessionStateActive),
		session("acme", "acme-s5", "r2", policy.SessionStateEnded),
		session("acme", "acme-s6", "r3", policy.SessionStateUnspecified),
	}
	rev := MustUpdate(t, s, func(tx store.Tx) error {
		for i := range extra {
			if err := store.PutSession(tx, &extra[i]); err != nil {
				return err
			}
		}
		return nil
	})

	MustView(t, s, func(tx store.ReadTx) error {
		for _, ss := range append(append(slices.Clone(acme.sessions), other.sessions...), extra...) {
			got, err := store.GetSession(tx, ss.ID)
			if err != nil || !reflect.DeepEqual(got, ss) {
				t.Errorf("GetSession(%q) = %+v, %v; want %+v", ss.ID, got, err, ss)
			}
			if ok, err := store.SessionExists(tx, ss.ID); !ok || err != nil {
				t.Errorf("SessionExists(%q) = %v, %v; want true", ss.ID, ok, err)
			}
		}
		for _, ss := range extra {
			if ss.Revision != rev {
				t.Errorf("session %q stamped %d; commit %d", ss.ID, ss.Revision, rev)
			}
		}
		if ok, err := store.SessionExists(tx, "acme-s9"); ok || err != nil {
			t.Errorf("SessionExists of a missing session = %v, %v", ok, err)
		}
		return nil
	})

	tests := []struct {
		acct, rep string
		want      int
	}{
		{"acme", "r1", 2},
		{"acme", "r2", 1},
		{"acme", "r3", 0},
		{"acme", "nobody", 0},
		{"other", "r1", 1},
		{"other", "r2", 1},
		{"acm", "r1", 0},
		{"missing", "r1", 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("ActiveSessionsOf %s %s", tc.acct, tc.rep), func(t *testing.T) {
			MustView(t, s, func(tx store.ReadTx) error {
				n, err := store.ActiveSessionsOf(tx, tc.acct, tc.rep)
				if err != nil || n != tc.want {
					t.Errorf("ActiveSessionsOf(%q, %q) = %d, %v; want %d", tc.acct, tc.rep, n, err, tc.want)
				}
				return nil
			})
		})
	}

	t.Run("ending a session", func(t *testing.T) {
		MustUpdate(t, s, func(tx store.Tx) error {
			ss, err := store.GetSession(tx, "acme-s1")
			if err != nil {
				return err
			}
			ss.State = policy.SessionStateEnded
			return store.PutSession(tx, &ss)
		})
		MustView(t, s, func(tx store.ReadTx) error {
			if n, err := store.ActiveSessionsOf(tx, "acme", "r1"); err != nil || n != 1 {
				t.Errorf("ActiveSessionsOf after ending one = %d, %v; want 1", n, err)
			}
			return nil
		})
	})

	t.Run("corrupt record", func(t *testing.T) {
		MustPut(t, s, "sess/bad", "acme", "t/acme/session/bad", "{not json")
		MustView(t, s, func(tx store.ReadTx) error {
			if _, err := store.GetSession(tx, "bad"); !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("GetSession of an undecodable record: %v; want ErrCorrupt", err)
			}
			if _, err := store.ActiveSessionsOf(tx, "acme", "r1"); !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("ActiveSessionsOf over an undecodable record: %v; want ErrCorrupt", err)
			}
			if _, _, err := store.LoadAccount(tx, "acme", true); !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("LoadAccount with sessions over an undecodable session: %v; want ErrCorrupt", err)
			}
			if _, _, err := store.LoadAccount(tx, "acme", false); err != nil {
				t.Errorf("LoadAccount without sessions over an undecodable session: %v; want no error", err)
			}
			return nil
		})
	})
}
