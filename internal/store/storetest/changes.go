// The change feed: Changes from any revision the history holds, and
// Subscribe.

package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func testChanges(t *testing.T, s store.Store) {
	base := s.Revision()
	if cs, err := Changes(t, s, base); err != nil || cs != nil {
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
	if cs, err := Changes(t, s, last); err != nil || cs != nil {
		t.Errorf("Changes(%d) when up to date = %+v, %v; want nil, nil", last, cs, err)
	}

	t.Run("inside View", func(t *testing.T) {
		MustView(t, s, func(tx store.ReadTx) error {
			cs, err := tx.Changes(base)
			if err != nil || len(cs) == 0 || cs[len(cs)-1].Revision != tx.Revision() {
				t.Errorf("Changes(%d) inside a View at %d = %+v, %v; want it to end at %d", base, tx.Revision(), cs, err, tx.Revision())
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

// testFollowerResumes follows the store the way the decision snapshot
// does while writers commit: load everything once, then repeatedly read
// the keys of the commits after the revision it has (reloading everything
// on ErrCompacted). Its copy must end equal to the store.
func testFollowerResumes(t *testing.T, s store.Store) {
	const (
		writers = 3
		commits = 60
	)
	copyOf := map[string]string{}
	var at uint64
	reloads := 0
	loadAll := func(tx store.ReadTx) error {
		clear(copyOf)
		reloads++
		at = tx.Revision()
		return tx.Scan("f/", "", func(k string, v []byte, _ uint64) (bool, error) {
			copyOf[k] = string(v)
			return true, nil
		})
	}
	catchUp := func() error {
		return s.View(context.Background(), func(tx store.ReadTx) error {
			if at == 0 && reloads == 0 {
				return loadAll(tx)
			}
			if tx.Revision() <= at {
				return nil
			}
			cs, err := tx.Changes(at)
			if errors.Is(err, store.ErrCompacted) {
				return loadAll(tx)
			}
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.Revision > tx.Revision() {
					break
				}
				if c.Revision <= at {
					return fmt.Errorf("Changes(%d) returned revision %d", at, c.Revision)
				}
				for _, k := range c.Keys {
					v, _, err := tx.Get(k)
					switch {
					case errors.Is(err, store.ErrNotFound):
						delete(copyOf, k)
					case err != nil:
						return err
					default:
						copyOf[k] = string(v)
					}
				}
			}
			at = tx.Revision()
			return nil
		})
	}
	MustPut(t, s, "f/seed", "0")
	if err := catchUp(); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range commits {
				_, err := s.Update(context.Background(), func(tx store.Tx) error {
					k := fmt.Sprintf("f/%d/%d", w, i%7)
					if i%5 == 4 {
						return tx.Delete(k)
					}
					if err := tx.Put(k, []byte(strconv.Itoa(i))); err != nil {
						return err
					}
					return tx.Put("f/seed", []byte(strconv.Itoa(w*1000+i)))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if err := catchUp(); err != nil {
			t.Fatal(err)
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := catchUp(); err != nil {
		t.Fatal(err)
	}
	keys, vals := MustScan(t, s, "f/", "")
	want := map[string]string{}
	for i, k := range keys {
		want[k] = vals[i]
	}
	if !maps.Equal(copyOf, want) {
		t.Errorf("follower at %d holds %v; the store holds %v", at, copyOf, want)
	}
	if at != s.Revision() {
		t.Errorf("follower at %d; store at %d", at, s.Revision())
	}
	t.Logf("%d full loads", reloads)
}
