package etcd_test

import (
	"errors"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// TestRebase_CommitsOutsideTheReadsDoNotRerun: a write guarded by the head
// (it scans) whose reads another replica's commits miss by a key — next
// to a key it got, next to one it read as missing, just past where a scan
// stopped, before a scan's startAfter, under a longer prefix, a deletion
// outside the ranges — commits with one run of its function, at a
// revision after theirs, and every write of both is kept. (The commits
// that do touch its reads are ScanningWriteSeesConflicts in the
// conformance suite.)
func TestRebase_CommitsOutsideTheReadsDoNotRerun(t *testing.T) {
	srv := etcdtest.Start(t)
	// Two replicas on one prefix: b's commits reach a through its watch.
	a := open(t, srv, "/gatehouse-test/rebase/")
	b := open(t, srv, "/gatehouse-test/rebase/")
	storetest.MustPut(t, a, "g", "1", "set/a", "1", "set/b", "1", "set/c", "1", "after/a", "1", "after/n", "1", "gone", "1")
	others := [][]string{{"g0", "x"}, {"missing0", "x"}, {"set/c", "2"}, {"set/d", "x"}, {"after/b", "x"}, {"setx", "x"}, {"other", "x"}}
	runs := 0
	var last uint64
	rev := storetest.MustUpdate(t, a, func(tx store.Tx) error {
		runs++
		out := ""
		v, _, err := tx.Get("g")
		if err != nil {
			return err
		}
		out += string(v)
		if _, _, err := tx.Get("missing"); !errors.Is(err, store.ErrNotFound) {
			return err
		}
		n := 0
		if err := tx.Scan("set/", "", func(k string, v []byte, _ uint64) (bool, error) {
			out += k
			n++
			return n < 2, nil // reads set/a, ends at set/b
		}); err != nil {
			return err
		}
		if err := tx.Scan("after/", "after/m", func(k string, _ []byte, _ uint64) (bool, error) {
			out += k
			return true, nil
		}); err != nil {
			return err
		}
		if runs == 1 {
			for _, kv := range others {
				last = storetest.MustPut(t, b, kv...)
			}
			last = storetest.MustDelete(t, b, "gone")
		}
		return tx.Put("out", []byte(out))
	})
	if runs != 1 {
		t.Errorf("the function ran %d times; want 1: no commit in between touched its reads", runs)
	}
	if rev <= last {
		t.Errorf("the write committed at %d, not after the other replica's last commit %d", rev, last)
	}
	if got, want := string(storetest.MustGet(t, a, "out")), "1set/aset/bafter/n"; got != want {
		t.Errorf("out = %q; want %q", got, want)
	}
	for _, kv := range others {
		if got := string(storetest.MustGet(t, a, kv[0])); got != kv[1] {
			t.Errorf("%s = %q; want %q", kv[0], got, kv[1])
		}
	}
	storetest.MustNotExist(t, a, "gone")
}
