package storecopy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/store/storecopy"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

var prefixes atomic.Int64

func openEtcd(t testing.TB, srv *etcdtest.Server) *etcd.Store {
	t.Helper()
	return openEtcdAt(t, srv, fmt.Sprintf("/copy-test/%d/", prefixes.Add(1)))
}

func openEtcdAt(t testing.TB, srv *etcdtest.Server, prefix string) *etcd.Store {
	t.Helper()
	s, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openBolt(t testing.TB, path string) *bolt.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "copy.db")
	}
	s, err := bolt.OpenFile(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// seed writes n keys with values of varied sizes (some of 100 KiB, so that
// byte limits split batches too, one empty) over several commits, deletes
// some, and returns what the store then holds.
func seed(t testing.TB, s store.Store, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	lim := s.Limits()
	per := 100
	if lim.MaxOps > 0 && lim.MaxOps < per {
		per = lim.MaxOps
	}
	for i := 0; i < n; i += per {
		storetest.MustUpdate(t, s, func(tx store.Tx) error {
			for j := i; j < min(i+per, n); j++ {
				if err := tx.Put(seedKey(j), []byte(seedValue(j))); err != nil {
					return err
				}
			}
			return nil
		})
		for j := i; j < min(i+per, n); j++ {
			want[seedKey(j)] = seedValue(j)
		}
	}
	var gone []string
	for k := range want {
		if strings.HasSuffix(k, "3") && len(gone) < 20 {
			gone = append(gone, k)
		}
	}
	storetest.MustDelete(t, s, gone...)
	for _, k := range gone {
		delete(want, k)
	}
	return want
}

func seedKey(j int) string { return fmt.Sprintf("acct/%03d/rec/%05d", j%7, j) }

func seedValue(j int) string {
	switch {
	case j%97 == 0:
		return strings.Repeat("x", 100<<10)
	case j == 5:
		return ""
	}
	return strings.Repeat(strconv.Itoa(j%10), 1+j%50)
}

// contents reads every key of s.
func contents(t testing.TB, s store.Store) map[string]string {
	t.Helper()
	got := map[string]string{}
	storetest.MustView(t, s, func(tx store.ReadTx) error {
		return tx.Scan("", "", func(k string, v []byte, _ uint64) (bool, error) {
			got[k] = string(v)
			return true, nil
		})
	})
	return got
}

func sameContents(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d keys, want %d", what, len(got), len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: key %q = %d bytes (present %v), want %d bytes", what, k, len(g), ok, len(v))
			return
		}
	}
}

// TestCopy_BoltToEtcdAndBack copies a bbolt store into etcd within etcd's
// default limits (more keys and bytes than one etcd transaction takes),
// verifies it, copies that back into a new bbolt file at the etcd
// revision, and finds every key and value of the original.
func TestCopy_BoltToEtcdAndBack(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	ctx := context.Background()
	orig := openBolt(t, "")
	// The source is far ahead of etcd's revision, as a long-used bbolt
	// file is of a new cluster.
	if err := orig.RaiseRevision(ctx, 100_000); err != nil {
		t.Fatal(err)
	}
	want := seed(t, orig, 700)

	e := openEtcd(t, srv)
	rep, digest, err := storecopy.Copy(ctx, orig, e, storecopy.Options{})
	if err != nil {
		t.Fatalf("copy bbolt → etcd: %v", err)
	}
	if rep.SourceRevision != orig.Revision() || rep.Keys != len(want) || rep.Loaded {
		t.Errorf("report %+v; want source revision %d, %d keys, not loaded", rep, orig.Revision(), len(want))
	}
	// 127 keys per etcd transaction at most, and 1.4 MiB: 680 keys with
	// eight of 100 KiB need at least six.
	if min := (len(want) + e.Limits().MaxOps - 1) / e.Limits().MaxOps; rep.Batches < min {
		t.Errorf("%d batches for %d keys; etcd takes at most %d keys a transaction", rep.Batches, len(want), e.Limits().MaxOps)
	}
	if n, err := storecopy.Verify(ctx, e, digest); err != nil || n != len(want) {
		t.Fatalf("verify etcd copy: %d keys, %v", n, err)
	}
	sameContents(t, "etcd copy", contents(t, e), want)
	// What was copied, and what is written next, is above the source's
	// revision: ids, etags and min_revision values made from the source's
	// revisions never meet a later write's.
	if e.Revision() <= rep.SourceRevision || rep.TargetRevision <= rep.SourceRevision {
		t.Errorf("etcd at %d (report %d) after a copy of revision %d", e.Revision(), rep.TargetRevision, rep.SourceRevision)
	}
	storetest.MustView(t, e, func(tx store.ReadTx) error {
		return tx.Scan("", "", func(k string, _ []byte, rev uint64) (bool, error) {
			if rev <= rep.SourceRevision {
				t.Errorf("%s copied at revision %d, not above the source's %d", k, rev, rep.SourceRevision)
				return false, nil
			}
			return true, nil
		})
	})

	back := openBolt(t, "")
	rep2, digest2, err := storecopy.Copy(ctx, e, back, storecopy.Options{})
	if err != nil {
		t.Fatalf("copy etcd → bbolt: %v", err)
	}
	if !rep2.Loaded || rep2.SourceRevision != e.Revision() || back.Revision() != rep2.SourceRevision || rep2.TargetRevision != rep2.SourceRevision {
		t.Errorf("report %+v, bbolt at %d; want a bulk load at etcd's revision %d", rep2, back.Revision(), e.Revision())
	}
	if _, err := storecopy.Verify(ctx, back, digest2); err != nil {
		t.Fatal(err)
	}
	// The round trip is the original: the same keys and values.
	if _, err := storecopy.Verify(ctx, back, digest); err != nil {
		t.Fatalf("bbolt → etcd → bbolt differs from the original: %v", err)
	}
	sameContents(t, "round trip", contents(t, back), want)
	// Every value of the loaded file has the load's revision as its mod
	// revision (an etag of it matches only the value read at that
	// revision).
	storetest.MustView(t, back, func(tx store.ReadTx) error {
		return tx.Scan("", "", func(k string, _ []byte, rev uint64) (bool, error) {
			if rev != rep2.SourceRevision {
				t.Errorf("%s: mod revision %d, want %d", k, rev, rep2.SourceRevision)
				return false, nil
			}
			return true, nil
		})
	})
	// The loaded file is a store like any other: it reopens, and it
	// takes writes after the loaded revision.
	path := back.Path()
	if err := back.Close(); err != nil {
		t.Fatal(err)
	}
	re := openBolt(t, path)
	if re.Revision() != rep2.SourceRevision {
		t.Fatalf("reopened at %d, want %d", re.Revision(), rep2.SourceRevision)
	}
	if rev := storetest.MustPut(t, re, "after", "load"); rev != rep2.SourceRevision+1 {
		t.Errorf("first write after the load at %d, want %d", rev, rep2.SourceRevision+1)
	}
}

// TestCopy_RefusesNonEmptyTarget: a copy into a store that holds keys is
// refused and writes nothing; forced, it makes the target equal to the
// source (extra keys deleted, others overwritten). On both drivers.
func TestCopy_RefusesNonEmptyTarget(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	ctx := context.Background()
	for name, open := range map[string]func() store.Store{
		"etcd": func() store.Store { return openEtcd(t, srv) },
		"bolt": func() store.Store { return openBolt(t, "") },
	} {
		t.Run(name, func(t *testing.T) {
			src := openBolt(t, "")
			want := seed(t, src, 300)
			dst := open()
			storetest.MustPut(t, dst, "acct/000/rec/00000", "old", "stale/only-in-target", "x")
			before := dst.Revision()
			if _, _, err := storecopy.Copy(ctx, src, dst, storecopy.Options{}); !errors.Is(err, storecopy.ErrTargetNotEmpty) {
				t.Fatalf("copy into a non-empty target: %v; want ErrTargetNotEmpty", err)
			}
			if dst.Revision() != before {
				t.Fatalf("refused copy wrote: revision %d → %d", before, dst.Revision())
			}
			rep, digest, err := storecopy.Copy(ctx, src, dst, storecopy.Options{Force: true})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Deleted != 1 || rep.Loaded {
				t.Errorf("forced copy: %+v; want 1 key deleted, no bulk load", rep)
			}
			if _, err := storecopy.Verify(ctx, dst, digest); err != nil {
				t.Fatal(err)
			}
			sameContents(t, "forced copy", contents(t, dst), want)
		})
	}
}

// TestVerify_FindsEveryDifference: a copy whose target changed afterwards
// — a value changed, a key deleted, a key added — fails verification with
// an error naming each, on both drivers.
func TestVerify_FindsEveryDifference(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	ctx := context.Background()
	for name, open := range map[string]func() store.Store{
		"etcd": func() store.Store { return openEtcd(t, srv) },
		"bolt": func() store.Store { return openBolt(t, "") },
	} {
		t.Run(name, func(t *testing.T) {
			src := openBolt(t, "")
			seed(t, src, 200)
			dst := open()
			_, digest, err := storecopy.Copy(ctx, src, dst, storecopy.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := storecopy.Verify(ctx, dst, digest); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name   string
				change func()
				undo   func()
				want   string
			}{
				{"changed value", func() { storetest.MustPut(t, dst, "acct/001/rec/00001", "tampered") },
					func() { storetest.MustPut(t, dst, "acct/001/rec/00001", "11") }, `1 with another value ("acct/001/rec/00001")`},
				{"same length, other bytes", func() { storetest.MustPut(t, dst, "acct/001/rec/00001", "12") },
					func() { storetest.MustPut(t, dst, "acct/001/rec/00001", "11") }, `1 with another value ("acct/001/rec/00001")`},
				{"deleted key", func() { storetest.MustDelete(t, dst, "acct/002/rec/00002") },
					func() { storetest.MustPut(t, dst, "acct/002/rec/00002", "222") }, `1 missing ("acct/002/rec/00002")`},
				{"deleted last key", func() { storetest.MustDelete(t, dst, "acct/006/rec/00195") },
					func() { storetest.MustPut(t, dst, seedKey(195), seedValue(195)) }, `1 missing ("acct/006/rec/00195")`},
				{"added key", func() { storetest.MustPut(t, dst, "zz/new", "v") },
					func() { storetest.MustDelete(t, dst, "zz/new") }, `1 extra ("zz/new")`},
				{"added first key", func() { storetest.MustPut(t, dst, "0", "v") },
					func() { storetest.MustDelete(t, dst, "0") }, `1 extra ("0")`},
			} {
				tc.change()
				_, err := storecopy.Verify(ctx, dst, digest)
				var me *storecopy.MismatchError
				if !errors.As(err, &me) || !errors.Is(err, storecopy.ErrMismatch) {
					t.Fatalf("%s: Verify = %v; want a *MismatchError", tc.name, err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %v; want it to say %s", tc.name, err, tc.want)
				}
				tc.undo()
				if _, err := storecopy.Verify(ctx, dst, digest); err != nil {
					t.Fatalf("after undoing %s: %v", tc.name, err)
				}
			}
		})
	}
}

// TestCopy_ConsistentWhileWriting copies an etcd store while writers keep
// committing: every commit writes a record and a counter together, so a
// consistent copy holds exactly the records up to its counter.
func TestCopy_ConsistentWhileWriting(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	ctx := context.Background()
	src := openEtcd(t, srv)
	seed(t, src, 400) // enough keys that the copy reads several pages
	write := func(i int) {
		storetest.MustUpdate(t, src, func(tx store.Tx) error {
			if err := tx.Put(fmt.Sprintf("w/%06d", i), []byte("r")); err != nil {
				return err
			}
			return tx.Put("counter", []byte(strconv.Itoa(i)))
		})
	}
	write(0)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; wctx.Err() == nil; i++ {
			write(i)
		}
	}()
	for round := range 3 {
		dst := openBolt(t, "")
		rep, digest, err := storecopy.Copy(ctx, src, dst, storecopy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := storecopy.Verify(ctx, dst, digest); err != nil {
			t.Fatal(err)
		}
		got := contents(t, dst)
		n, err := strconv.Atoi(got["counter"])
		if err != nil {
			t.Fatalf("round %d: counter %q", round, got["counter"])
		}
		records := 0
		for k := range got {
			if strings.HasPrefix(k, "w/") {
				records++
			}
		}
		if records != n+1 {
			t.Fatalf("round %d: copy at revision %d holds %d records but its counter says %d: not one revision", round, rep.SourceRevision, records, n+1)
		}
	}
	stop()
	wg.Wait()
}

// TestCopy_ValueBeyondTargetLimit: a record larger than the target takes
// in one transaction is refused with an error naming it.
func TestCopy_ValueBeyondTargetLimit(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	src := openBolt(t, "")
	storetest.MustPut(t, src, "small", "v", "huge", string(bytes.Repeat([]byte{'h'}, 2<<20)))
	_, _, err := storecopy.Copy(context.Background(), src, openEtcd(t, srv), storecopy.Options{})
	if !errors.Is(err, store.ErrTxnTooLarge) || !strings.Contains(err.Error(), `"huge"`) {
		t.Fatalf("copy of a 2 MiB record into etcd: %v; want ErrTxnTooLarge naming it", err)
	}
}

// TestCopy_DamagedSourceRecord: a source record whose checksum fails stops
// the copy with its key: a copy never carries damage silently.
func TestCopy_DamagedSourceRecord(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	const prefix = "/copy-test/damaged/"
	src := openEtcdAt(t, srv, prefix)
	storetest.MustPut(t, src, "a", "1", "b", "2")
	if _, err := src.Client().Put(context.Background(), prefix+"kv/b", "not sealed"); err != nil {
		t.Fatal(err)
	}
	_, _, err := storecopy.Copy(context.Background(), src, openBolt(t, ""), storecopy.Options{})
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("copy of a damaged record: %v; want ErrCorrupt naming it", err)
	}
}
