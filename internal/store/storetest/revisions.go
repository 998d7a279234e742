// Revisions: every commit gets a larger store revision, known when Update
// returns; every value carries the revision that last wrote it.

package storetest

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strconv"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

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

// testTxRevision: a transaction reads at one store revision; in a write
// transaction that revision is before the commit's, which only Update's
// result tells.
func testTxRevision(t *testing.T, s store.Store) {
	MustView(t, s, func(tx store.ReadTx) error {
		if got, want := tx.Revision(), s.Revision(); got != want {
			t.Errorf("View on an empty store: tx.Revision() = %d; want Revision() = %d", got, want)
		}
		return nil
	})
	for i := range 3 {
		before := s.Revision()
		var inTx uint64
		rev := MustUpdate(t, s, func(tx store.Tx) error {
			inTx = tx.Revision()
			return tx.Put("k", []byte(strconv.Itoa(i)))
		})
		if inTx < before || inTx >= rev {
			t.Errorf("commit %d: tx.Revision() = %d inside Update; want the revision its reads see, in [%d, %d)", i, inTx, before, rev)
		}
		MustView(t, s, func(tx store.ReadTx) error {
			if got, want := tx.Revision(), s.Revision(); got != want || got != rev {
				t.Errorf("commit %d: View tx.Revision() = %d; want Revision() = %d = %d", i, got, want, rev)
			}
			return nil
		})
	}
}

// getRev returns the value and mod revision of key.
func getRev(t testing.TB, s store.Store, key string) (string, uint64, error) {
	t.Helper()
	var v []byte
	var rev uint64
	var gerr error
	MustView(t, s, func(tx store.ReadTx) error {
		var b []byte
		b, rev, gerr = tx.Get(key)
		v = bytes.Clone(b)
		return nil
	})
	return string(v), rev, gerr
}

// scanRevs returns the mod revision of every key under prefix.
func scanRevs(t testing.TB, s store.Store, prefix string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	MustView(t, s, func(tx store.ReadTx) error {
		return tx.Scan(prefix, "", func(k string, _ []byte, rev uint64) (bool, error) {
			out[k] = rev
			return true, nil
		})
	})
	return out
}

// testModRevisions: Get and Scan report the revision of the commit that
// last wrote each key; a key written in the reading transaction reports 0.
func testModRevisions(t *testing.T, s store.Store) {
	r1 := MustPut(t, s, "m/a", "1", "m/b", "1")
	r2 := MustPut(t, s, "m/a", "2")
	want := map[string]uint64{"m/a": r2, "m/b": r1}
	check := func(when string) {
		t.Helper()
		for k, rev := range want {
			if _, got, err := getRev(t, s, k); err != nil || got != rev {
				t.Errorf("%s: Get(%q) mod revision %d, %v; want %d", when, k, got, err, rev)
			}
		}
		if got := scanRevs(t, s, "m/"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Scan mod revisions %v; want %v", when, got, want)
		}
	}
	check("after two commits")

	r3 := MustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.Put("m/c", []byte("new")); err != nil {
			return err
		}
		if _, rev, err := tx.Get("m/c"); err != nil || rev != 0 {
			t.Errorf("Get of a key written by the same transaction: mod revision %d, %v; want 0 (not committed yet)", rev, err)
		}
		if _, rev, err := tx.Get("m/b"); err != nil || rev != r1 {
			t.Errorf("Get of an untouched key in a write transaction: mod revision %d, %v; want %d", rev, err, r1)
		}
		return tx.Scan("m/", "", func(k string, _ []byte, rev uint64) (bool, error) {
			if k == "m/c" && rev != 0 {
				t.Errorf("Scan of a key written by the same transaction: mod revision %d; want 0", rev)
			}
			return true, nil
		})
	})
	want["m/c"] = r3
	check("after a third commit")

	// A failed Update changes no mod revision.
	_, err := s.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Put("m/a", []byte("lost")); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update error %v; want %v", err, errBoom)
	}
	check("after a failed Update")

	// Deleted and written again: the new commit's revision.
	MustDelete(t, s, "m/b")
	r5 := MustPut(t, s, "m/b", "again")
	want["m/b"] = r5
	check("after delete and rewrite")

	// Rewriting an unchanged value is a write.
	r6 := MustPut(t, s, "m/c", "new")
	want["m/c"] = r6
	check("after rewriting the same value")
}

// testRecordRevisions: the typed helpers take a record's Revision (its
// etag) from the driver's mod revision, never from the transaction.
func testRecordRevisions(t *testing.T, s store.Store) {
	a := policy.Account{ID: "acme", DisplayName: "Acme", Revision: 12345}
	rev := MustUpdate(t, s, func(tx store.Tx) error { return store.PutAccount(tx, &a) })
	if a.Revision != 0 {
		t.Errorf("after PutAccount, Revision = %d; want 0 until the commit is known", a.Revision)
	}
	store.WrittenAt(&a, rev)
	if a.Revision != rev {
		t.Errorf("WrittenAt: Revision = %d; want %d", a.Revision, rev)
	}
	read := func() policy.Account {
		var got policy.Account
		MustView(t, s, func(tx store.ReadTx) (err error) {
			got, err = store.GetAccount(tx, "acme")
			if err != nil {
				return err
			}
			list, _, err := store.ListAccounts(tx, "", 0)
			if err != nil || len(list) != 1 || list[0].Revision != got.Revision {
				t.Errorf("ListAccounts = %+v, %v; want revision %d", list, err, got.Revision)
			}
			return nil
		})
		return got
	}
	if got := read(); got.Revision != rev {
		t.Errorf("GetAccount revision %d; want the commit's %d", got.Revision, rev)
	}
	// Another record's commit leaves this one's revision alone.
	MustPut(t, s, "unrelated", "x")
	if got := read(); got.Revision != rev {
		t.Errorf("GetAccount revision %d after an unrelated commit; want %d", got.Revision, rev)
	}
	// WrittenAt leaves a record that was only read alone.
	got := read()
	store.WrittenAt(&got, rev+100)
	if got.Revision != rev {
		t.Errorf("WrittenAt changed the revision of a record read at %d to %d", rev, got.Revision)
	}
	rev2 := MustUpdate(t, s, func(tx store.Tx) error {
		cur, err := store.GetAccount(tx, "acme")
		if err != nil {
			return err
		}
		cur.DisplayName = "Acme 2"
		return store.PutAccount(tx, &cur)
	})
	if got := read(); got.Revision != rev2 || got.DisplayName != "Acme 2" {
		t.Errorf("after an update: %+v; want revision %d", got, rev2)
	}
}
