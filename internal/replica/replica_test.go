package replica_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

// TestReplica_UnchangedStateKeepsItsPointer: a commit rebuilds only what
// it wrote. The compiled state of an account it did not touch, and the
// records of sessions it did not touch, are the same pointers in the next
// snapshot, so that readers (policy watchers) can tell "unchanged" by
// comparing pointers; what it wrote gets new ones.
func TestReplica_UnchangedStateKeepsItsPointer(t *testing.T) {
	t.Parallel()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := replica.New(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go f.Run(ctx)
	// update commits fn and returns the first snapshot that shows it.
	update := func(fn func(store.Tx) error) *policy.Snapshot {
		t.Helper()
		rev, err := st.Update(ctx, fn)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := f.WaitFor(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}

	update(func(tx store.Tx) error {
		for _, id := range []string{"a", "b"} {
			if err := store.PutAccount(tx, &policy.Account{ID: id, DisplayName: id}); err != nil {
				return err
			}
			if err := store.PutSession(tx, &policy.Session{ID: "s-" + id, AccountID: id, Kind: policy.SessionKindLiveGuide,
				State: policy.SessionStateActive, RepresentativeID: "alice", CustomerID: "c", StartTime: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	before := f.Current()
	a, sa, b, sb := before.Account("a"), before.Session("s-a"), before.Account("b"), before.Session("s-b")
	if a == nil || sa == nil || b == nil || sb == nil {
		t.Fatal("accounts or sessions missing from the snapshot")
	}
	steps := []struct {
		name    string
		write   func(store.Tx) error
		changed map[string]bool // which of a, s-a, b, s-b get new pointers
	}{
		{"allowlist of b", func(tx store.Tx) error {
			return store.PutAllowlistEntry(tx, "b", &policy.AllowlistEntry{ID: "e1", Pattern: "example.com"})
		}, map[string]bool{"b": true}},
		{"a session of b", func(tx store.Tx) error {
			return store.PutSession(tx, &policy.Session{ID: "s-b2", AccountID: "b", Kind: policy.SessionKindLiveGuide,
				State: policy.SessionStateActive, RepresentativeID: "alice", CustomerID: "c", StartTime: time.Now()})
		}, map[string]bool{}},
		{"a caller token", func(tx store.Tx) error {
			return store.PutToken(tx, &auth.Token{ID: "k-1", Name: "n", Role: auth.RoleDecider, AccountID: "b", Hash: "h"})
		}, map[string]bool{}},
		{"session of a", func(tx store.Tx) error {
			s := *before.Session("s-a")
			s.CustomerRating = 5
			return store.PutSession(tx, &s)
		}, map[string]bool{"s-a": true}},
		{"account a", func(tx store.Tx) error {
			return store.PutAccount(tx, &policy.Account{ID: "a", DisplayName: "A again"})
		}, map[string]bool{"a": true}},
	}
	for _, step := range steps {
		snap := update(step.write)
		got := map[string]bool{
			"a": snap.Account("a") != a, "s-a": snap.Session("s-a") != sa,
			"b": snap.Account("b") != b, "s-b": snap.Session("s-b") != sb,
		}
		for k, changed := range got {
			if changed != step.changed[k] {
				t.Errorf("after writing %s: %s has a new pointer: %v, want %v", step.name, k, changed, step.changed[k])
			}
		}
		a, sa, b, sb = snap.Account("a"), snap.Session("s-a"), snap.Account("b"), snap.Session("s-b")
	}
}
