// Conflicts and retries: an Update's function may run more than once, and
// writers that read what another changes are serialized.

package storetest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// testOnlyLastRunCommits: however many times a driver runs an Update's
// function, only the writes of the run that commits are kept. The
// function here is impure on purpose (it counts its runs), so each run
// writes another key.
func testOnlyLastRunCommits(t *testing.T, s store.Store) {
	runs := 0
	rev := MustUpdate(t, s, func(tx store.Tx) error {
		runs++
		if err := tx.Put(fmt.Sprintf("run/%d", runs), []byte("x")); err != nil {
			return err
		}
		return tx.Put("run/last", []byte(strconv.Itoa(runs)))
	})
	if runs < 1 {
		t.Fatalf("Update committed without running its function")
	}
	keys, _ := MustScan(t, s, "run/", "")
	want := []string{fmt.Sprintf("run/%d", runs), "run/last"}
	if !slices.Equal(keys, want) {
		t.Errorf("after %d runs, keys %q; want only the last run's %q", runs, keys, want)
	}
	if got := string(MustGet(t, s, "run/last")); got != strconv.Itoa(runs) {
		t.Errorf("run/last = %s; want %d", got, runs)
	}
	cs := MustChanges(t, s, rev-1)
	if len(cs) == 0 || cs[len(cs)-1].Revision != rev || !slices.Equal(sortedKeys(cs[len(cs)-1]), want) {
		t.Errorf("Changes of the commit = %+v; want {%d %q}", cs, rev, want)
	}
	t.Logf("function ran %d times", runs)
}

// testConflictingWritersSerialize: writer A reads n and writes n+1; while
// A's first run is open, writer B commits n*10. Whether the driver makes A
// wait (one writer at a time) or runs A again after B's commit (optimistic
// concurrency), the result is one of the two serial orders, never A's
// stale n+1 over B's write.
func testConflictingWritersSerialize(t *testing.T, s store.Store) {
	for i := range 5 {
		MustPut(t, s, "n", "1")
		var once sync.Once
		bDone := make(chan error, 1)
		readN := func(tx store.ReadTx) (int, error) {
			v, _, err := tx.Get("n")
			if err != nil {
				return 0, err
			}
			return strconv.Atoi(string(v))
		}
		_, err := s.Update(context.Background(), func(tx store.Tx) error {
			n, err := readN(tx)
			if err != nil {
				return err
			}
			once.Do(func() {
				go func() {
					_, err := s.Update(context.Background(), func(tx store.Tx) error {
						n, err := readN(tx)
						if err != nil {
							return err
						}
						return tx.Put("n", []byte(strconv.Itoa(n*10)))
					})
					bDone <- err
				}()
				// Give B the chance to commit first where the driver
				// lets it; a driver with one writer at a time makes it
				// wait for A instead.
				select {
				case err := <-bDone:
					bDone <- err
				case <-time.After(quiet):
				}
			})
			return tx.Put("n", []byte(strconv.Itoa(n+1)))
		})
		if err != nil {
			t.Fatalf("round %d: A: %v", i, err)
		}
		select {
		case err := <-bDone:
			if err != nil {
				t.Fatalf("round %d: B: %v", i, err)
			}
		case <-time.After(Wait):
			t.Fatalf("round %d: B did not commit within %v", i, Wait)
		}
		if got := string(MustGet(t, s, "n")); got != "20" && got != "11" {
			t.Errorf("round %d: n = %s; want 20 (A then B) or 11 (B then A): a lost update", i, got)
		}
	}
}
