// KV semantics: Put, Get, Delete, Scan, atomic commits and rollbacks,
// contexts and Close.

package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

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
				got, _, err := tx.Get(tc.key)
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
				if _, _, err := tx.Get(tc.key); !errors.Is(err, store.ErrNotFound) {
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
			if _, _, err := tx.Get("a"); err != nil {
				return err
			}
			return tx.Scan("", "", func(string, []byte, uint64) (bool, error) { return true, nil })
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
			err := tx.Scan("b/", "", func(k string, _ []byte, _ uint64) (bool, error) {
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
				scanErr = tx.Scan("k/", "", func(string, []byte, uint64) (bool, error) {
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
			scanErr = tx.Scan("k/", "", func(string, []byte, uint64) (bool, error) {
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
			return tx.Scan("k/", "", func(string, []byte, uint64) (bool, error) { return false, errBoom })
		})
		if !errors.Is(err, errBoom) {
			t.Errorf("View error = %v; want %v", err, errBoom)
		}
	})
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
			v, _, err := tx.Get("k")
			if err == nil && string(v) != "v" {
				err = fmt.Errorf("k = %q; want v", v)
			}
			return err
		})
	}()
	go func() {
		// The function may run more than once; it says it started once.
		var once sync.Once
		_, err := s.Update(context.Background(), func(tx store.Tx) error {
			once.Do(func() { started <- struct{}{} })
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
