// Concurrent writers and readers: no lost update, strictly increasing
// revisions, and views that never see half a commit.

package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

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
					v, _, err := tx.Get("counter")
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
				if rev <= inTx {
					errs <- fmt.Errorf("writer %d commit %d: Update returned %d, not after the revision %d its reads saw", w, i, rev, inTx)
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
	// Each commit writes both keys of the pair with the next count.
	write := func(tx store.Tx) error {
		n := 0
		if v, _, err := tx.Get("pair/x"); err == nil {
			n, _ = strconv.Atoi(string(v))
		}
		v := []byte(strconv.Itoa(n + 1))
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
					x, xrev, err := tx.Get("pair/x")
					if err != nil {
						return fmt.Errorf("get x: %w", err)
					}
					y, _, err := tx.Get("pair/y")
					if err != nil {
						return fmt.Errorf("get y: %w", err)
					}
					if !bytes.Equal(x, y) {
						return fmt.Errorf("x = %s, y = %s in one View", x, y)
					}
					// Only the pair's writer commits, so the pair was
					// last written by the View's revision.
					rev := tx.Revision()
					if xrev != rev {
						return fmt.Errorf("View at revision %d reads a pair written at %d", rev, xrev)
					}
					if rev < last {
						return fmt.Errorf("View revision went back from %d to %d", last, rev)
					}
					last = rev
					var scanned [][]byte
					if err := tx.Scan("pair/", "", func(_ string, v []byte, _ uint64) (bool, error) {
						scanned = append(scanned, bytes.Clone(v))
						return true, nil
					}); err != nil {
						return err
					}
					if len(scanned) != 2 || !bytes.Equal(scanned[0], x) || !bytes.Equal(scanned[1], x) {
						return fmt.Errorf("Scan in a View at %d = %q; want both %s", rev, scanned, x)
					}
					cs, err := tx.Changes(base)
					if err != nil {
						return fmt.Errorf("Changes(%d) inside View: %w", base, err)
					}
					if len(cs) == 0 || cs[len(cs)-1].Revision != rev {
						return fmt.Errorf("Changes(%d) inside a View at %d does not end at it: %d changes", base, rev, len(cs))
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
