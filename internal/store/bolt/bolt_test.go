package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
	bbolt "go.etcd.io/bbolt"
)

// childEnv names the data directory a re-executed test binary opens; see
// TestMain and openInChild.
const childEnv = "GATEHOUSE_BOLT_TEST_OPEN_DIR"

// childAcceptEnv makes the child accept a meta-page rollback.
const childAcceptEnv = "GATEHOUSE_BOLT_TEST_ACCEPT_META_ROLLBACK"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(openChild(dir))
	}
	os.Exit(m.Run())
}

// MustOpen opens the store in dir and closes it when t ends.
func MustOpen(t testing.TB, dir string) *Store {
	t.Helper()
	return MustOpenWith(t, dir, migrations, SchemaVersion)
}

// MustOpenWith opens the store in dir with the given migrations and schema
// version and closes it when t ends.
func MustOpenWith(t testing.TB, dir string, migs map[int]Migration, version int) *Store {
	t.Helper()
	s, err := openWith(dir, migs, version)
	if err != nil {
		t.Fatalf("open %s (schema %d): %v", dir, version, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// MustClose closes s.
func MustClose(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// MustReadMeta returns the meta bucket's value for key, read from the closed
// store file in dir (nil when absent).
func MustReadMeta(t testing.TB, dir string, key []byte) []byte {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open raw file: %v", err)
	}
	defer db.Close()
	var out []byte
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(metaBucket)
		if b == nil {
			return errors.New("no meta bucket")
		}
		out = bytes.Clone(b.Get(key))
		return nil
	})
	if err != nil {
		t.Fatalf("read meta %s: %v", key, err)
	}
	return out
}

// MustRawUpdate runs fn in a read-write transaction on the closed store
// file in dir.
func MustRawUpdate(t testing.TB, dir string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("open raw file: %v", err)
	}
	if err := db.Update(fn); err != nil {
		_ = db.Close()
		t.Fatalf("raw update: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close raw file: %v", err)
	}
}

func mustSchemaVersion(t testing.TB, dir string) uint64 {
	t.Helper()
	raw := MustReadMeta(t, dir, keySchema)
	if len(raw) == 8 { // schema 1 wrote it bare
		return binary.BigEndian.Uint64(raw)
	}
	v, err := unsealU64(keySchema, raw)
	if err != nil {
		t.Fatalf("schema_version record = %x: %v", raw, err)
	}
	return v
}

// etcdLimits are etcd's default bounds on one transaction (--max-txn-ops
// 128, --max-request-bytes 1.5 MiB).
var etcdLimits = store.Limits{MaxOps: 128, MaxTxnBytes: 3 << 19}

// MustOpenOpts opens the store in dir with options and closes it when t
// ends.
func MustOpenOpts(t testing.TB, dir string, o Options) *Store {
	t.Helper()
	s, err := OpenWith(dir, o)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStore_Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return MustOpen(t, t.TempDir())
	})
}

// TestStore_ConformanceAsEtcd runs the suite with etcd's default limits
// and every Update's function run twice, as an optimistic driver may.
func TestStore_ConformanceAsEtcd(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return MustOpenOpts(t, t.TempDir(), Options{Limits: etcdLimits, RetryUpdates: 1})
	})
}

// TestUpdate_RetryRunsFunctionAgain: with RetryUpdates, the function runs
// 1+n times, and only the last run commits.
func TestUpdate_RetryRunsFunctionAgain(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		s := MustOpenOpts(t, t.TempDir(), Options{RetryUpdates: n})
		runs := 0
		rev := storetest.MustUpdate(t, s, func(tx store.Tx) error {
			runs++
			return tx.Put(fmt.Sprintf("run/%d", runs), nil)
		})
		if runs != n+1 {
			t.Errorf("RetryUpdates %d: %d runs; want %d", n, runs, n+1)
		}
		if keys, _ := storetest.MustScan(t, s, "run/", ""); len(keys) != 1 || keys[0] != fmt.Sprintf("run/%d", runs) {
			t.Errorf("RetryUpdates %d: keys %q; want only the last run's", n, keys)
		}
		if rev != 1 {
			t.Errorf("RetryUpdates %d: revision %d; want 1 (rolled-back runs make none)", n, rev)
		}
		// A function that fails stops at its first run.
		runs = 0
		if _, err := s.Update(context.Background(), func(tx store.Tx) error { runs++; return errors.New("no") }); err == nil || runs != 1 {
			t.Errorf("RetryUpdates %d: a failing function ran %d times, err %v; want once, its error", n, runs, err)
		}
	}
}

func TestStore_PersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := MustOpen(t, dir)
	storetest.MustPut(t, s, "a", "1", "b", "2")
	storetest.MustPut(t, s, "c", "3")
	storetest.MustDelete(t, s, "b")
	rev := storetest.MustPut(t, s, "a", "4")
	MustClose(t, s)

	s = MustOpen(t, dir)
	if got := s.Revision(); got != rev {
		t.Fatalf("Revision() after reopen = %d; want %d", got, rev)
	}
	storetest.MustView(t, s, func(tx store.ReadTx) error {
		if got := tx.Revision(); got != rev {
			t.Errorf("View revision after reopen = %d; want %d", got, rev)
		}
		return nil
	})
	keys, vals := storetest.MustScan(t, s, "", "")
	if got, want := fmt.Sprint(keys, vals), fmt.Sprint([]string{"a", "c"}, []string{"4", "3"}); got != want {
		t.Errorf("contents after reopen = %s; want %s", got, want)
	}
	if cs, err := storetest.Changes(t, s, rev); err != nil || cs != nil {
		t.Errorf("Changes(%d) after reopen = %+v, %v; want nil, nil", rev, cs, err)
	}
	// The change log outlives the process: a follower resumes from a
	// revision it saw before the restart.
	if cs, err := storetest.Changes(t, s, 0); err != nil || len(cs) != 4 || cs[3].Revision != rev || !slices.Equal(cs[1].Keys, []string{"c"}) {
		t.Errorf("Changes(0) after reopen = %+v, %v; want the 4 commits before it", cs, err)
	}
	next := storetest.MustPut(t, s, "d", "5")
	if next != rev+1 {
		t.Errorf("first commit after reopen has revision %d; want %d", next, rev+1)
	}
	if cs := storetest.MustChanges(t, s, rev); len(cs) != 1 || cs[0].Revision != next {
		t.Errorf("Changes(%d) = %+v; want the commit %d", rev, cs, next)
	}
}

func TestOpen_RecordsSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	s := MustOpen(t, dir)
	if got, want := s.Path(), filepath.Join(dir, FileName); got != want {
		t.Errorf("Path() = %q; want %q", got, want)
	}
	MustClose(t, s)
	if got := mustSchemaVersion(t, dir); got != SchemaVersion {
		t.Errorf("schema_version = %d; want %d", got, SchemaVersion)
	}
	if raw := MustReadMeta(t, dir, keyRevision); raw != nil {
		t.Errorf("revision record in a store without commits = %x; want none", raw)
	}

	s = MustOpen(t, dir)
	rev := storetest.MustPut(t, s, "k", "v")
	MustClose(t, s)
	if got := MustReadMeta(t, dir, keyRevision); !bytes.Equal(got, sealU64(keyRevision, rev)) {
		t.Errorf("revision record = %x; want %x", got, sealU64(keyRevision, rev))
	}
}

func TestOpen_RefusesBadMeta(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(tx *bbolt.Tx) error
		wantErr error
	}{
		{"newer schema", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(keySchema, sealU64(keySchema, SchemaVersion+1))
		}, store.ErrSchemaTooNew},
		{"implausibly new schema", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(keySchema, sealU64(keySchema, 1<<40))
		}, store.ErrCorrupt},
		{"bit flipped in the schema record", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(keySchema, flipBit(sealU64(keySchema, SchemaVersion), recordHeaderSize+2))
		}, store.ErrCorrupt},
		{"bit flipped in a schema 1 record", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(keySchema, u64(1|1<<46))
		}, store.ErrCorrupt},
		{"bit flipped in the revision record", func(tx *bbolt.Tx) error {
			raw := tx.Bucket(metaBucket).Get(keyRevision)
			return tx.Bucket(metaBucket).Put(keyRevision, flipBit(raw, len(raw)-1))
		}, store.ErrCorrupt},
		{"short schema record", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(keySchema, []byte{0, 0, 0, 1})
		}, store.ErrCorrupt},
		{"short revision record", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(keyRevision, []byte{1, 2, 3})
		}, store.ErrCorrupt},
		{"data without schema record", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Delete(keySchema)
		}, store.ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := MustOpen(t, dir)
			rev := storetest.MustPut(t, s, "k", "v")
			MustClose(t, s)
			var want []byte
			MustRawUpdate(t, dir, func(tx *bbolt.Tx) error {
				if err := tc.damage(tx); err != nil {
					return err
				}
				want = bytes.Clone(tx.Bucket(metaBucket).Get(keySchema))
				return nil
			})

			s, err := Open(dir)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open succeeded; want %v", tc.wantErr)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Open error = %v; want %v", err, tc.wantErr)
			}
			t.Logf("Open: %v", err)
			if got := MustReadMeta(t, dir, keySchema); !bytes.Equal(got, want) {
				t.Errorf("refused Open changed schema_version from %x to %x", want, got)
			}
			if got := MustReadMeta(t, dir, keyRevision); !strings.Contains(tc.name, "revision record") && !bytes.Equal(got, sealU64(keyRevision, rev)) {
				t.Errorf("refused Open changed the revision record to %x", got)
			}
		})
	}
}

// rewrite is a migration that prefixes the value of key "k" and counts
// its runs.
func rewrite(runs *[]string, name string) Migration {
	return func(tx *bbolt.Tx) error {
		*runs = append(*runs, name)
		kv := tx.Bucket(kvBucket)
		k := []byte("k")
		v, err := unseal(k, kv.Get(k))
		if err != nil {
			return fmt.Errorf("k: %w", err)
		}
		return kv.Put(k, seal(k, append([]byte(name+":"), v...)))
	}
}

func TestOpenWith_Migrates(t *testing.T) {
	tests := []struct {
		name     string
		from, to int
		migs     func(runs *[]string) map[int]Migration
		wantRuns []string
		wantVal  string
	}{
		{"one step", 1, 2, func(runs *[]string) map[int]Migration {
			return map[int]Migration{1: rewrite(runs, "m1")}
		}, []string{"m1"}, "m1:old"},
		{"two steps in order", 1, 3, func(runs *[]string) map[int]Migration {
			return map[int]Migration{2: rewrite(runs, "m2"), 1: rewrite(runs, "m1")}
		}, []string{"m1", "m2"}, "m2:m1:old"},
		{"from the middle", 2, 3, func(runs *[]string) map[int]Migration {
			return map[int]Migration{1: rewrite(runs, "m1"), 2: rewrite(runs, "m2")}
		}, []string{"m2"}, "m2:old"},
		{"nothing to do", 2, 2, func(runs *[]string) map[int]Migration {
			return map[int]Migration{1: rewrite(runs, "m1")}
		}, nil, "old"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := MustOpenWith(t, dir, nil, tc.from)
			rev := storetest.MustPut(t, s, "k", "old", "other", "o")
			MustClose(t, s)
			if got := mustSchemaVersion(t, dir); got != uint64(tc.from) {
				t.Fatalf("new store records schema %d; want %d", got, tc.from)
			}

			var runs []string
			migs := tc.migs(&runs)
			s = MustOpenWith(t, dir, migs, tc.to)
			if fmt.Sprint(runs) != fmt.Sprint(tc.wantRuns) {
				t.Errorf("migrations ran %q; want %q", runs, tc.wantRuns)
			}
			if got := string(storetest.MustGet(t, s, "k")); got != tc.wantVal {
				t.Errorf("k = %q after migration; want %q", got, tc.wantVal)
			}
			if got := string(storetest.MustGet(t, s, "other")); got != "o" {
				t.Errorf("other = %q; want o", got)
			}
			if got := s.Revision(); got != rev {
				t.Errorf("Revision() after migration = %d; want %d", got, rev)
			}
			MustClose(t, s)
			if got := mustSchemaVersion(t, dir); got != uint64(tc.to) {
				t.Errorf("schema_version after migration = %d; want %d", got, tc.to)
			}

			// Reopening does not migrate again.
			runs = nil
			s = MustOpenWith(t, dir, migs, tc.to)
			if len(runs) != 0 {
				t.Errorf("reopen ran migrations %q again", runs)
			}
			if got := string(storetest.MustGet(t, s, "k")); got != tc.wantVal {
				t.Errorf("k = %q after reopen; want %q", got, tc.wantVal)
			}
			MustClose(t, s)

			// An older binary refuses the migrated file.
			if tc.to > tc.from {
				if _, err := openWith(dir, nil, tc.from); !errors.Is(err, store.ErrSchemaTooNew) {
					t.Errorf("open at schema %d of a schema %d file: %v; want ErrSchemaTooNew", tc.from, tc.to, err)
				}
			}
		})
	}
}

func TestOpenWith_FailedMigrationChangesNothing(t *testing.T) {
	errMig := errors.New("migration failed")
	tests := []struct {
		name    string
		migs    func(runs *[]string) map[int]Migration
		to      int
		wantErr error
		wantMsg string
	}{
		{"missing migration", func(*[]string) map[int]Migration { return nil }, 2, nil, "no migration from schema 1 to 2"},
		{"missing later migration", func(runs *[]string) map[int]Migration {
			return map[int]Migration{1: rewrite(runs, "m1")}
		}, 3, nil, "no migration from schema 2 to 3"},
		{"migration error", func(runs *[]string) map[int]Migration {
			return map[int]Migration{1: func(tx *bbolt.Tx) error {
				if err := rewrite(runs, "m1")(tx); err != nil {
					return err
				}
				return errMig
			}}
		}, 2, errMig, "migrate schema 1 to 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := MustOpenWith(t, dir, nil, 1)
			storetest.MustPut(t, s, "k", "old")
			MustClose(t, s)

			var runs []string
			s, err := openWith(dir, tc.migs(&runs), tc.to)
			if err == nil {
				_ = s.Close()
				t.Fatalf("open succeeded; want %q", tc.wantMsg)
			}
			t.Logf("open: %v", err)
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tc.wantErr)
			}
			if got := mustSchemaVersion(t, dir); got != 1 {
				t.Errorf("schema_version after a failed migration = %d; want 1", got)
			}
			s = MustOpenWith(t, dir, nil, 1)
			if got := string(storetest.MustGet(t, s, "k")); got != "old" {
				t.Errorf("k = %q after a failed migration; want old (rolled back)", got)
			}
		})
	}
}

func TestOpen_RefusesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	s := MustOpen(t, dir)
	storetest.MustPut(t, s, "k", "v")

	type result struct {
		s   *Store
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		s2, err := Open(dir)
		done <- result{s2, err}
	}()
	select {
	case r := <-done:
		elapsed := time.Since(start)
		if r.err == nil {
			_ = r.s.Close()
			t.Fatalf("second Open of an open store succeeded")
		}
		t.Logf("second Open after %v: %v", elapsed.Round(time.Millisecond), r.err)
		if !strings.Contains(r.err.Error(), "locked") {
			t.Errorf("error %q does not mention %q", r.err, "locked")
		}
		if elapsed > 5*time.Second {
			t.Errorf("second Open took %v; want a few seconds at most", elapsed)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("second Open did not return within 15s")
	}

	// The first store is unaffected, and the lock goes with Close.
	storetest.MustPut(t, s, "k2", "v2")
	MustClose(t, s)
	s = MustOpen(t, dir)
	if got := string(storetest.MustGet(t, s, "k2")); got != "v2" {
		t.Errorf("k2 = %q; want v2", got)
	}
}

// TestChanges_Compacted: the change log keeps the last ChangeHistory
// commits, across reopening; older ones are ErrCompacted.
func TestChanges_Compacted(t *testing.T) {
	const history = 50
	dir := t.TempDir()
	s := MustOpenOpts(t, dir, Options{ChangeHistory: history})
	base := s.Revision()
	var revs []uint64
	commit := func(i int) {
		t.Helper()
		revs = append(revs, storetest.MustPut(t, s, "k/"+strconv.Itoa(i%10), strconv.Itoa(i)))
	}
	for i := range history {
		commit(i)
	}
	if cs := storetest.MustChanges(t, s, base); len(cs) != history {
		t.Fatalf("Changes(%d) after %d commits has %d changes; want all", base, history, len(cs))
	}

	commit(history)
	if _, err := storetest.Changes(t, s, base); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Changes(%d) after %d commits: %v; want ErrCompacted", base, history+1, err)
	}
	oldest := revs[0]
	cs, err := storetest.Changes(t, s, oldest)
	if err != nil {
		t.Fatalf("Changes(%d): %v", oldest, err)
	}
	if len(cs) != history || cs[0].Revision != revs[1] || cs[len(cs)-1].Revision != revs[len(revs)-1] {
		t.Fatalf("Changes(%d) = %d changes; want %d changes %d..%d", oldest, len(cs), history, revs[1], revs[len(revs)-1])
	}
	for i, c := range cs {
		if c.Revision != revs[i+1] {
			t.Fatalf("Changes(%d)[%d].Revision = %d; want %d", oldest, i, c.Revision, revs[i+1])
		}
	}

	for i := range 20 {
		commit(history + 1 + i)
	}
	MustClose(t, s)
	s = MustOpenOpts(t, dir, Options{ChangeHistory: history})
	if _, err := storetest.Changes(t, s, revs[10]); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Changes(%d) after %d commits and a reopen: %v; want ErrCompacted", revs[10], len(revs), err)
	}
	first := revs[len(revs)-history-1]
	if cs := storetest.MustChanges(t, s, first); len(cs) != history {
		t.Errorf("Changes(%d) after a reopen = %d changes; want %d", first, len(cs), history)
	}
	last := revs[len(revs)-1]
	if cs := storetest.MustChanges(t, s, last-1); len(cs) != 1 || cs[0].Revision != last {
		t.Errorf("Changes(%d) = %+v; want the last commit", last-1, cs)
	}
	if cs, err := storetest.Changes(t, s, last); err != nil || cs != nil {
		t.Errorf("Changes(%d) = %+v, %v; want nil, nil", last, cs, err)
	}
	// The log is bounded in the file too.
	n := 0
	if err := s.db.View(func(btx *bbolt.Tx) error {
		return btx.Bucket(changesBucket).ForEach(func(_, _ []byte) error { n++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if n != history {
		t.Errorf("change log holds %d entries; want %d", n, history)
	}
}

func TestStore_UseAfterClose(t *testing.T) {
	s := MustOpen(t, t.TempDir())
	rev := storetest.MustPut(t, s, "k", "v")
	MustClose(t, s)

	_, err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Put("k", []byte("w")) })
	if err == nil {
		t.Fatalf("Update after Close succeeded")
	}
	t.Logf("Update after Close: %v (ErrClosed: %v)", err, errors.Is(err, store.ErrClosed))
	err = s.View(context.Background(), func(store.ReadTx) error { return nil })
	if err == nil {
		t.Fatalf("View after Close succeeded")
	}
	t.Logf("View after Close: %v (ErrClosed: %v)", err, errors.Is(err, store.ErrClosed))
	if got := s.Revision(); got != rev {
		t.Errorf("Revision() after Close = %d; want %d", got, rev)
	}
	if err := s.Close(); err != nil {
		t.Logf("second Close: %v", err)
	}
}

func TestUpdate_PanicRollsBack(t *testing.T) {
	s := MustOpen(t, t.TempDir())
	rev := storetest.MustPut(t, s, "k", "v")
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Errorf("Update swallowed fn's panic")
			}
		}()
		_, _ = s.Update(context.Background(), func(tx store.Tx) error {
			if err := tx.Put("k", []byte("panicked")); err != nil {
				return err
			}
			panic("fn panics")
		})
	}()
	if got := s.Revision(); got != rev {
		t.Errorf("Revision() after a panicking Update = %d; want %d", got, rev)
	}
	storetest.MustNoNewChanges(t, s, rev)

	done := make(chan uint64, 1)
	go func() {
		r, _ := s.Update(context.Background(), func(tx store.Tx) error { return tx.Put("k2", []byte("v")) })
		done <- r
	}()
	select {
	case next := <-done:
		if next != rev+1 {
			t.Errorf("next commit has revision %d; want %d", next, rev+1)
		}
	case <-time.After(storetest.Wait):
		t.Fatalf("Update after a panicking Update did not return within %v (writer lock held?)", storetest.Wait)
	}
	if got := string(storetest.MustGet(t, s, "k")); got != "v" {
		t.Errorf("k = %q; want v (the panicking tx rolled back)", got)
	}
}

// childResult is what openChild reports about opening a store.
type childResult struct {
	OpenErr     string
	Corrupt     bool
	TooNew      bool
	Rollback    bool   // refused with store.ErrMetaRollback
	Fallback    string // the accepted MetaFallback
	Revision    uint64
	Keys        int
	UseErr      string
	UpdateError string
}

// openChild opens dir, reads every key and commits once, and prints a
// childResult. It runs in a separate process so that a crash or a hang in
// bbolt on a damaged file fails one test instead of the whole binary.
func openChild(dir string) int {
	var res childResult
	s, err := OpenWith(dir, Options{AcceptMetaRollback: os.Getenv(childAcceptEnv) != ""})
	if err != nil {
		res.OpenErr = err.Error()
		res.Corrupt = errors.Is(err, store.ErrCorrupt)
		res.TooNew = errors.Is(err, store.ErrSchemaTooNew)
		res.Rollback = errors.Is(err, store.ErrMetaRollback)
	} else {
		if fb := s.MetaFallback(); fb != nil {
			res.Fallback = fb.String()
		}
		res.Revision = s.Revision()
		err := s.View(context.Background(), func(tx store.ReadTx) error {
			return tx.Scan("", "", func(string, []byte, uint64) (bool, error) {
				res.Keys++
				return true, nil
			})
		})
		if err != nil {
			res.UseErr = err.Error()
		}
		if _, err := s.Update(context.Background(), func(tx store.Tx) error {
			return tx.Put("child", []byte("x"))
		}); err != nil {
			res.UpdateError = err.Error()
		}
		if err := s.Close(); err != nil && res.UseErr == "" {
			res.UseErr = "close: " + err.Error()
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 3
	}
	return 0
}

// openInChild runs openChild on dir in a new process and returns its
// result, failing the test when the process crashes or hangs.
func openInChild(t *testing.T, dir string) childResult {
	t.Helper()
	return openInChildWith(t, dir, false)
}

// openInChildWith is openInChild; accept accepts a meta-page rollback.
func openInChildWith(t *testing.T, dir string, accept bool) childResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	// The race detector otherwise sleeps a second before the child exits.
	cmd.Env = append(os.Environ(), childEnv+"="+dir, "GORACE=atexit_sleep_ms=0")
	if accept {
		cmd.Env = append(cmd.Env, childAcceptEnv+"=1")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("opening or reading the store hung (killed after 30s); stderr:\n%s", tail(stderr.String()))
	}
	if err != nil {
		t.Fatalf("opening or reading the store crashed the process (%v); stderr:\n%s", err, tail(stderr.String()))
	}
	var res childResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("child output %q: %v", stdout.String(), err)
	}
	return res
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 25 {
		lines = lines[:25]
	}
	return strings.Join(lines, "\n")
}

// Offsets in a bbolt meta page: a 16-byte page header, then magic (4),
// version (4), page size (4), flags (4), root bucket (16), freelist (8),
// high-water page id (8), txid (8), checksum (8).
const (
	metaMagicOff = 16
	metaRootOff  = 32
	metaPgidOff  = 56
	metaTxidOff  = 64
)

// storeFile is the bytes of a closed store file holding keys keys, and
// the page layout read from its meta pages.
type storeFile struct {
	data     []byte
	pageSize int
	newest   int // index of the meta page with the higher txid
	highMark int // pages in use
	keys     int
	revision uint64
}

// lastKey is the last key mustStoreFile writes.
const lastKey = "k/4/059"

func mustStoreFile(t *testing.T) storeFile {
	t.Helper()
	dir := t.TempDir()
	s := MustOpen(t, dir)
	keys := 0
	var rev uint64
	for c := range 5 {
		rev = storetest.MustUpdate(t, s, func(tx store.Tx) error {
			for i := range 60 {
				if err := tx.Put(fmt.Sprintf("k/%d/%03d", c, i), bytes.Repeat([]byte{'a' + byte(c)}, 300)); err != nil {
					return err
				}
			}
			return nil
		})
		keys += 60
	}
	MustClose(t, s)
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	f := storeFile{data: data, pageSize: int(binary.LittleEndian.Uint32(data[24:])), keys: keys, revision: rev}
	tx0 := binary.LittleEndian.Uint64(data[metaTxidOff:])
	tx1 := binary.LittleEndian.Uint64(data[f.pageSize+metaTxidOff:])
	if tx1 > tx0 {
		f.newest = 1
	}
	f.highMark = int(binary.LittleEndian.Uint64(data[f.newest*f.pageSize+metaPgidOff:]))
	if f.pageSize == 0 || f.highMark < 4 || f.highMark*f.pageSize > len(data) {
		t.Fatalf("unexpected store file: %d bytes, page size %d, %d pages in use", len(data), f.pageSize, f.highMark)
	}
	return f
}

// leafWith returns the index of the leaf page holding key.
func (f storeFile) leafWith(t *testing.T, key string) int {
	t.Helper()
	for p := 2; p < f.highMark; p++ {
		page := f.data[p*f.pageSize : (p+1)*f.pageSize]
		if binary.LittleEndian.Uint16(page[8:]) == leafPageFlag && bytes.Contains(page, []byte(key)) {
			return p
		}
	}
	t.Fatalf("no leaf page holds %q", key)
	return 0
}

func zeroPage(b []byte, p, size int) []byte {
	b = bytes.Clone(b)
	clear(b[p*size : (p+1)*size])
	return b
}

func flipBit(b []byte, off int) []byte {
	b = bytes.Clone(b)
	b[off] ^= 0x10
	return b
}

func TestOpen_DamagedFile(t *testing.T) {
	f := mustStoreFile(t)
	ps := f.pageSize
	t.Logf("store file: %d bytes, %d-byte pages, %d in use, newest meta %d", len(f.data), ps, f.highMark, f.newest)
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	older := 1 - f.newest

	// want is "corrupt" (refused with ErrCorrupt), "open" (bbolt can still
	// read it), "open-empty" (bbolt treats it as a new file), or "no-crash"
	// (refused with ErrCorrupt, or opened; either way no crash on use).
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated to 100 bytes", f.data[:100], "corrupt"},
		{"truncated to one page", f.data[:ps], "corrupt"},
		{"truncated to the meta pages", f.data[:2*ps], "corrupt"},
		{"truncated to half the pages in use", f.data[:f.highMark/2*ps], "corrupt"},
		{"truncated before the last page in use", f.data[:(f.highMark-1)*ps], "corrupt"},
		{"random bytes", random, "corrupt"},
		{"bit flipped in both meta pages", flipBit(flipBit(f.data, metaRootOff), ps+metaRootOff), "corrupt"},
		{"magic flipped in both meta pages", flipBit(flipBit(f.data, metaMagicOff), ps+metaMagicOff), "corrupt"},
		{"bit flipped in the older meta page", flipBit(f.data, older*ps+metaRootOff), "rollback"},
		{"bit flipped in the newest meta page", flipBit(f.data, f.newest*ps+metaRootOff), "rollback"},
		{"empty file", nil, "open-empty"},
		{"leaf page zeroed", zeroPage(f.data, f.leafWith(t, lastKey), ps), "no-crash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			res := openInChild(t, dir)
			t.Logf("%+v", res)
			switch tc.want {
			case "corrupt":
				if res.OpenErr == "" {
					t.Fatalf("Open succeeded (revision %d, %d keys, use error %q); want it refused", res.Revision, res.Keys, res.UseErr)
				}
				if !res.Corrupt {
					t.Errorf("Open error %q is not store.ErrCorrupt", res.OpenErr)
				}
			case "rollback":
				// Refused, naming the rollback; accepted with the option,
				// it opens from the other meta page (the newest commit,
				// or the one before it) and says so.
				if !res.Rollback || !res.Corrupt || !strings.Contains(res.OpenErr, "meta page") {
					t.Fatalf("open without accepting a rollback: %+v; want refused with ErrMetaRollback", res)
				}
				res = openInChildWith(t, dir, true)
				t.Logf("accepted: %+v", res)
				if res.OpenErr != "" || res.UseErr != "" || res.UpdateError != "" {
					t.Fatalf("open %q, use %q, update %q; want usable", res.OpenErr, res.UseErr, res.UpdateError)
				}
				if res.Revision != f.revision && res.Revision != f.revision-1 {
					t.Errorf("revision %d; want %d or %d", res.Revision, f.revision, f.revision-1)
				}
				if !strings.Contains(res.Fallback, "meta page") {
					t.Errorf("the accepted fallback is not reported: %q", res.Fallback)
				}
				// The child's commit rewrote the damaged page: the next
				// open needs no option.
				if res = openInChild(t, dir); res.OpenErr != "" || res.Fallback != "" {
					t.Errorf("second open after the accepted rollback: %+v; want a clean open", res)
				}
			case "no-crash":
				// Refused, or opened with reads reporting the damage.
				if res.OpenErr != "" && !res.Corrupt {
					t.Errorf("Open error %q is not store.ErrCorrupt", res.OpenErr)
				}
			case "open-empty":
				if res.OpenErr != "" || res.Revision != 0 || res.Keys != 0 {
					t.Errorf("got %+v; want an empty store", res)
				}
			}
		})
	}
}

// TestOpen_MetaFallbackEveryBit flips each bit of the meta fields (magic to
// checksum) of either meta page: every such file is refused with
// store.ErrMetaRollback naming both transaction ids, and opens with
// Options.AcceptMetaRollback reporting the fallback; the page with the
// newest commit damaged opens exactly one commit behind.
func TestOpen_MetaFallbackEveryBit(t *testing.T) {
	f := mustStoreFile(t)
	ps := f.pageSize
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	for page := range 2 {
		for off := pageHeaderSize; off < pageHeaderSize+metaSize; off++ {
			for bit := range 8 {
				data := bytes.Clone(f.data)
				data[page*ps+off] ^= 1 << bit
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
				_, err := Open(dir)
				if !errors.Is(err, store.ErrMetaRollback) || !errors.Is(err, store.ErrCorrupt) {
					t.Fatalf("page %d offset %d bit %d: Open = %v; want ErrMetaRollback", page, off, bit, err)
				}
				if off >= metaTxidOff && off < metaTxidOff+8 {
					continue // the damaged page's txid field is itself damaged
				}
				usedTx := binary.LittleEndian.Uint64(f.data[(1-page)*ps+metaTxidOff:])
				damagedTx := binary.LittleEndian.Uint64(f.data[page*ps+metaTxidOff:])
				if !strings.Contains(err.Error(), fmt.Sprintf("txid field reads %d", damagedTx)) || !strings.Contains(err.Error(), fmt.Sprintf("transaction %d", usedTx)) {
					t.Fatalf("page %d offset %d bit %d: %v does not name both transaction ids (%d, %d)", page, off, bit, err, damagedTx, usedTx)
				}
			}
		}
		s, err := OpenWith(dir, Options{AcceptMetaRollback: true})
		if err != nil {
			t.Fatalf("page %d: accepted open: %v", page, err)
		}
		fb := s.MetaFallback()
		want := f.revision
		if page == f.newest {
			want = f.revision - 1
		}
		if fb == nil || fb.DamagedPage != page || fb.UsedPage != 1-page || s.Revision() != want {
			t.Errorf("page %d damaged, accepted: fallback %+v, revision %d; want page %d used at revision %d", page, fb, s.Revision(), 1-page, want)
		}
		MustClose(t, s)
	}
}

// A store file that cannot be read is not a damaged one, and the error
// names the file once ("open X: permission denied", not "open X: open X:
// …").
func TestOpen_UnreadableFileNamedOnce(t *testing.T) {
	t.Parallel()
	cases := map[string]func(t *testing.T, path string){
		"a directory in its place": func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		},
	}
	if os.Geteuid() != 0 { // root reads every file
		cases["no permission"] = func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o000); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, prepare := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			prepare(t, path)
			s, err := Open(dir)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if n := strings.Count(err.Error(), path); n != 1 {
				t.Errorf("error names the file %d times: %q", n, err)
			}
			if errors.Is(err, store.ErrCorrupt) {
				t.Errorf("error %q calls the file damaged", err)
			}
		})
	}
}

// TestChanges_LargeCommitIsCompacted: a commit of more keys than the change
// log lists makes Changes across it ErrCompacted (a follower reloads), and
// Changes after it works again.
func TestChanges_LargeCommitIsCompacted(t *testing.T) {
	s := MustOpen(t, t.TempDir())
	before := storetest.MustPut(t, s, "a", "1")
	big := storetest.MustUpdate(t, s, func(tx store.Tx) error {
		for i := range maxLoggedKeys + 1 {
			if err := tx.Put(fmt.Sprintf("big/%05d", i), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if _, err := storetest.Changes(t, s, before); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Changes across a commit of %d keys: %v; want ErrCompacted", maxLoggedKeys+1, err)
	}
	next := storetest.MustPut(t, s, "b", "2")
	if cs := storetest.MustChanges(t, s, big); len(cs) != 1 || cs[0].Revision != next {
		t.Errorf("Changes after the large commit = %+v; want {%d [b]}", cs, next)
	}
}
