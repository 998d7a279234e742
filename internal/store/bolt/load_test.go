package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// TestLoad_AtRevision: a bulk load of more keys than one of its batches
// holds ends at the given revision, every value's mod revision that
// revision, the change history before it compacted, and survives a
// reopen; the next commit follows it.
func TestLoad_AtRevision(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "load.db")
	s, err := bolt.OpenFile(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n, rev = 10000, 777
	err = s.Load(context.Background(), rev, func(put func(string, []byte) error) error {
		for i := range n {
			if err := put(fmt.Sprintf("k/%05d", i), []byte(fmt.Sprint(i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Revision() != rev {
		t.Fatalf("revision %d after the load, want %d", s.Revision(), rev)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = bolt.OpenFile(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	count := 0
	storetest.MustView(t, s, func(tx store.ReadTx) error {
		if tx.Revision() != rev {
			t.Errorf("reopened at %d, want %d", tx.Revision(), rev)
		}
		if _, err := tx.Changes(rev - 1); !errors.Is(err, store.ErrCompacted) {
			t.Errorf("Changes before the load: %v; want ErrCompacted", err)
		}
		return tx.Scan("", "", func(k string, v []byte, r uint64) (bool, error) {
			if want := fmt.Sprintf("k/%05d", count); k != want || string(v) != fmt.Sprint(count) || r != rev {
				t.Errorf("key %d: %q = %q at %d; want %q = %d at %d", count, k, v, r, want, count, rev)
				return false, nil
			}
			count++
			return true, nil
		})
	})
	if count != n {
		t.Errorf("%d keys after the load, want %d", count, n)
	}
	if r := storetest.MustPut(t, s, "next", "x"); r != rev+1 {
		t.Errorf("first commit after the load at %d, want %d", r, rev+1)
	}
}

// TestLoad_RefusesUsedStore: a store that holds a key, or committed
// before, is not loaded, and keeps what it held.
func TestLoad_RefusesUsedStore(t *testing.T) {
	t.Parallel()
	fill := func(put func(string, []byte) error) error { return put("a", []byte("new")) }
	s, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.MustPut(t, s, "a", "old")
	if err := s.Load(context.Background(), 100, fill); !errors.Is(err, bolt.ErrNotEmpty) {
		t.Fatalf("Load into a store with data: %v; want ErrNotEmpty", err)
	}
	storetest.MustDelete(t, s, "a")
	if err := s.Load(context.Background(), 100, fill); !errors.Is(err, bolt.ErrNotEmpty) {
		t.Fatalf("Load into a store that committed before: %v; want ErrNotEmpty", err)
	}
	if s.Revision() != 2 {
		t.Errorf("revision %d after refused loads, want 2", s.Revision())
	}
}
