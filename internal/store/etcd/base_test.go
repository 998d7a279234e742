package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// TestConformance_RevisionBase runs the conformance suite on prefixes
// whose revision was raised far above etcd's (as a migration from a store
// at a high revision does): every revision the driver hands out and takes
// back goes through the base.
func TestConformance_RevisionBase(t *testing.T) {
	srv := etcdtest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s := open(t, srv, "")
		if err := s.RaiseRevision(context.Background(), 1<<30); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestRaiseRevision: after RaiseRevision(floor) every revision is above
// floor — the store's, a commit's, a read's, a value's mod revision —
// another replica opening the prefix sees the same numbers, the change
// history before the base is compacted, the base never goes down, and
// other prefixes keep etcd's revisions.
func TestRaiseRevision(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	const prefix = "/raised/"
	a := open(t, srv, prefix)
	const floor = 5_000_000
	if err := a.RaiseRevision(ctx, floor); err != nil {
		t.Fatal(err)
	}
	if a.Revision() <= floor {
		t.Fatalf("Revision() = %d after RaiseRevision(%d)", a.Revision(), floor)
	}
	rev := storetest.MustPut(t, a, "k", "v")
	if rev <= floor {
		t.Fatalf("commit at %d, not above %d", rev, floor)
	}
	b := open(t, srv, prefix)
	if b.Revision() < rev {
		t.Errorf("another replica opens at %d, before the commit's %d", b.Revision(), rev)
	}
	storetest.MustView(t, b, func(tx store.ReadTx) error {
		if _, mod, err := tx.Get("k"); err != nil || mod != rev {
			t.Errorf("Get on the other replica: mod revision %d, %v; want %d", mod, err, rev)
		}
		if _, err := tx.Changes(floor - 10); !errors.Is(err, store.ErrCompacted) {
			t.Errorf("Changes before the base: %v; want ErrCompacted", err)
		}
		ch, err := tx.Changes(rev - 1)
		if err != nil || len(ch) != 1 || ch[0].Revision != rev {
			t.Errorf("Changes(%d) = %v, %v; want the commit at %d", rev-1, ch, err, rev)
		}
		return nil
	})
	// Raising to a lower floor changes nothing.
	before := a.Revision()
	if err := a.RaiseRevision(ctx, 10); err != nil || a.Revision() != before {
		t.Errorf("RaiseRevision(10): %v, revision %d → %d", err, before, a.Revision())
	}
	if other := open(t, srv, "/not-raised/"); other.Revision() >= floor {
		t.Errorf("another prefix at %d: the base is per prefix", other.Revision())
	}
}

// TestRaiseRevision_Freshness: on a prefix with a revision base, the
// store confirms itself current at the store revisions it hands out (a
// replica's snapshot revision), not at etcd's lower ones.
func TestRaiseRevision_Freshness(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	s := open(t, srv, "/raised-fresh/")
	if err := s.RaiseRevision(ctx, 7_000_000); err != nil {
		t.Fatal(err)
	}
	rev := storetest.MustPut(t, s, "k", "v")
	storetest.MustView(t, s, func(tx store.ReadTx) error { return nil }) // a confirming read
	if _, ok := s.CurrentAsOf(rev); !ok {
		t.Fatalf("CurrentAsOf(%d) not confirmed after a read: a replica on this prefix would count as stale", rev)
	}
	// A later commit ends rev's currency: rev is confirmed current only
	// up to before that commit, never after (confirmations in etcd's
	// lower numbering would all look "at or before rev").
	rev2 := storetest.MustPut(t, s, "k", "w")
	committed := time.Now()
	storetest.MustView(t, s, func(tx store.ReadTx) error { return nil })
	if at, ok := s.CurrentAsOf(rev); !ok || !at.Before(committed) {
		t.Fatalf("CurrentAsOf(%d) = %v, %v after the commit at %d acknowledged at %v: a stale snapshot would count as fresh", rev, at, ok, rev2, committed)
	}
	if _, ok := s.CurrentAsOf(rev2); !ok {
		t.Fatalf("CurrentAsOf(%d) not confirmed", rev2)
	}
	reopened := open(t, srv, "/raised-fresh/")
	if _, ok := reopened.CurrentAsOf(reopened.Revision()); !ok {
		t.Fatalf("a replica opening the prefix is not current at its revision %d", reopened.Revision())
	}
}
