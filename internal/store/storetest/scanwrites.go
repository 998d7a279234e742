// Writes that scan: they commit under a steady stream of unrelated
// commits, and still see every commit that changed what they read.

package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// maxScanningRuns bounds the runs of a scanning write's function while
// unrelated commits stream in: a driver that ran it again on every
// commit it overlaps would exceed it (or never commit).
const maxScanningRuns = 5

// accountKeys is how many keys the scanning write reads: more than one
// page of a driver that scans in pages (etcd: 512 keys a request).
const accountKeys = 600

// busyWriters start n writers that commit unrelated keys
// (busy/<writer>/<i>) in a tight loop until the returned stop is called;
// commits counts their commits.
func busyWriters(t *testing.T, s store.Store, n int) (commits *atomic.Int64, stop func()) {
	t.Helper()
	commits = new(atomic.Int64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, n)
	for w := range n {
		go func() {
			for i := 0; ctx.Err() == nil; i++ {
				_, err := s.Update(ctx, func(tx store.Tx) error {
					return tx.Put(fmt.Sprintf("busy/%d/%d", w, i%64), []byte(strconv.Itoa(i)))
				})
				if err != nil && ctx.Err() == nil {
					done <- err
					return
				}
				commits.Add(1)
			}
			done <- nil
		}()
	}
	return commits, func() {
		cancel()
		for range n {
			if err := <-done; err != nil {
				t.Errorf("unrelated writer: %v", err)
			}
		}
	}
}

// awaitCommits waits until n more unrelated commits than from were made,
// or quiet passes (a driver with one writer at a time makes them wait
// for the open transaction).
func awaitCommits(commits *atomic.Int64, from, n int64) {
	deadline := time.Now().Add(quiet)
	for commits.Load() < from+n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// testScanningWriteUnderTraffic: a write that scans a prefix commits
// within Wait, its function running at most maxScanningRuns times, while
// four other writers commit unrelated keys in a tight loop — also when
// those commits land between its reads and its commit.
func testScanningWriteUnderTraffic(t *testing.T, s store.Store) {
	var kv []string
	for i := range accountKeys {
		kv = append(kv, fmt.Sprintf("acct/%04d", i), "x")
		if len(kv) == 2*64 || i == accountKeys-1 {
			MustPut(t, s, kv...)
			kv = kv[:0]
		}
	}
	commits, stop := busyWriters(t, s, 4)
	defer stop()
	awaitCommits(commits, 0, 3)
	for round := range 3 {
		runs := 0
		ctx, cancel := context.WithTimeout(context.Background(), Wait)
		_, err := s.Update(ctx, func(tx store.Tx) error {
			runs++
			n := 0
			if err := tx.Scan("acct/", "", func(string, []byte, uint64) (bool, error) {
				n++
				return true, nil
			}); err != nil {
				return err
			}
			if _, _, err := tx.Get("count/acct"); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if runs == 1 {
				// Let unrelated commits land between the reads and the commit.
				awaitCommits(commits, commits.Load(), 3)
			}
			return tx.Put("count/acct", []byte(strconv.Itoa(n+round)))
		})
		cancel()
		if err != nil {
			t.Fatalf("round %d: scanning write after %d runs, %d unrelated commits: %v", round, runs, commits.Load(), err)
		}
		if runs > maxScanningRuns {
			t.Errorf("round %d: the scanning write's function ran %d times; want at most %d", round, runs, maxScanningRuns)
		}
		if got, want := string(MustGet(t, s, "count/acct")), strconv.Itoa(accountKeys+round); got != want {
			t.Errorf("round %d: count/acct = %s; want %s", round, got, want)
		}
		t.Logf("round %d: %d runs, %d unrelated commits so far", round, runs, commits.Load())
	}
}

// testScanningWriteSeesConflicts: a write that scans and reads keys (so a
// driver cannot guard it key by key) overlaps a commit B that changes
// what it read, among unrelated commits before and after B. Whatever the
// driver does, the result is serial: when B committed first, the run of
// the function that committed saw B's write — no lost update, no phantom.
func testScanningWriteSeesConflicts(t *testing.T, s store.Store) {
	cases := []struct {
		name string
		// b is B's write; it changes what A reads.
		b func(tx store.Tx) error
	}{
		{"GotKeyChanged", func(tx store.Tx) error { return tx.Put("c/got", []byte("2")) }},
		{"GotKeyDeleted", func(tx store.Tx) error { return tx.Delete("c/got") }},
		{"MissingKeyCreated", func(tx store.Tx) error { return tx.Put("c/missing", []byte("new")) }},
		{"KeyInsertedIntoScan", func(tx store.Tx) error { return tx.Put("c/set/bb", []byte("new")) }},
		{"KeyDeletedFromScan", func(tx store.Tx) error { return tx.Delete("c/set/b") }},
		{"ScannedValueChanged", func(tx store.Tx) error { return tx.Put("c/set/a", []byte("changed")) }},
		{"KeyInsertedBeforeStop", func(tx store.Tx) error { return tx.Put("c/stop/a1", []byte("new")) }},
		{"StopKeyChanged", func(tx store.Tx) error { return tx.Put("c/stop/b", []byte("changed")) }},
		{"KeyInsertedAfterStartAfter", func(tx store.Tx) error { return tx.Put("c/after/c1", []byte("new")) }},
		{"ChangesGrow", func(tx store.Tx) error { return tx.Put("c/unrelated", []byte("x")) }},
	}
	// read is what A's function reads; its output is written as is, so
	// that the committed output names the state the run saw. Only the
	// ChangesGrow case reads the change history.
	read := func(tx store.ReadTx, changesAfter uint64) (string, error) {
		out := ""
		for _, k := range []string{"c/got", "c/missing"} {
			v, _, err := tx.Get(k)
			switch {
			case errors.Is(err, store.ErrNotFound):
				out += k + "=none;"
			case err != nil:
				return "", err
			default:
				out += k + "=" + string(v) + ";"
			}
		}
		scan := func(prefix, after string, limit int) error {
			n := 0
			return tx.Scan(prefix, after, func(k string, v []byte, _ uint64) (bool, error) {
				out += k + "=" + string(v) + ";"
				n++
				return limit == 0 || n < limit, nil
			})
		}
		if err := scan("c/set/", "", 0); err != nil {
			return "", err
		}
		if err := scan("c/stop/", "", 2); err != nil { // a, then b ends it
			return "", err
		}
		if err := scan("c/after/", "c/after/b", 0); err != nil { // c, d
			return "", err
		}
		if changesAfter > 0 {
			cs, err := tx.Changes(changesAfter)
			if err != nil {
				return "", err
			}
			out += "changes=" + strconv.Itoa(len(cs))
		}
		return out, nil
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			MustPut(t, s, "c/got", "1", "c/set/a", "1", "c/set/b", "1", "c/set/c", "1",
				"c/stop/a", "1", "c/stop/b", "1", "c/stop/c", "1",
				"c/after/a", "1", "c/after/b", "1", "c/after/c", "1", "c/after/d", "1")
			base := MustDelete(t, s, "c/missing", "c/set/bb", "c/stop/a1", "c/after/c1", "c/unrelated", "c/out")
			var changesAfter uint64
			if tc.name == "ChangesGrow" {
				changesAfter = base
			}
			var before string
			MustView(t, s, func(tx store.ReadTx) error {
				var err error
				before, err = read(tx, 0)
				return err
			})
			var once sync.Once
			var revB uint64
			bDone := make(chan error, 1)
			runs := 0
			revA, err := s.Update(context.Background(), func(tx store.Tx) error {
				runs++
				out, err := read(tx, changesAfter)
				if err != nil {
					return err
				}
				once.Do(func() {
					go func() {
						// Unrelated commits before and after B's: the
						// conflict is not the last commit A finds.
						put := func(k string) func(store.Tx) error {
							return func(tx store.Tx) error { return tx.Put(k, []byte("x")) }
						}
						var err error
						for i, fn := range []func(store.Tx) error{put("busy/1"), tc.b, put("busy/2"), put("busy/3")} {
							rev, uerr := s.Update(context.Background(), fn)
							if i == 1 {
								revB = rev
							}
							err = errors.Join(err, uerr)
						}
						bDone <- err
					}()
					// Give B the chance to commit first where the driver
					// lets it.
					select {
					case err := <-bDone:
						bDone <- err
					case <-time.After(quiet):
					}
				})
				return tx.Put("c/out", []byte(out))
			})
			if err != nil {
				t.Fatalf("A: %v", err)
			}
			select {
			case err := <-bDone:
				if err != nil {
					t.Fatalf("B: %v", err)
				}
			case <-time.After(Wait):
				t.Fatalf("B did not commit within %v", Wait)
			}
			got := string(MustGet(t, s, "c/out"))
			// A serial A reads the state before B when it committed
			// first, else the state after B (the other commits change
			// nothing it reads), and the history of the commits before
			// its own.
			var want string
			if revA < revB {
				want = before
			} else {
				MustView(t, s, func(tx store.ReadTx) error {
					var err error
					want, err = read(tx, 0)
					return err
				})
			}
			if changesAfter > 0 {
				n := 0
				for _, c := range MustChanges(t, s, base) {
					if c.Revision < revA {
						n++
					}
				}
				want += "changes=" + strconv.Itoa(n)
			}
			if got != want {
				t.Errorf("A committed at %d, B at %d; A's function (%d runs) read\n%s\nnot the state a serial order gives\n%s", revA, revB, runs, got, want)
			}
			t.Logf("A at %d, B at %d, %d runs", revA, revB, runs)
		})
	}
}
