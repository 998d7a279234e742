package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// Timing of the freshness tests: confirmations every interval, requests
// bounded by reqTimeout. The bounds they check are many intervals wide.
const (
	interval   = 50 * time.Millisecond
	reqTimeout = 500 * time.Millisecond
)

// openVia returns a store reaching etcd at endpoint (a proxy) under prefix.
func openVia(t *testing.T, endpoint, prefix string) *etcd.Store {
	t.Helper()
	s, err := etcd.Open(context.Background(), etcd.Options{Endpoints: []string{endpoint}, Prefix: prefix,
		FreshnessInterval: interval, RequestTimeout: reqTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// confirmedAfter waits until s confirms revision rev current at a time
// after since, and returns that time.
func confirmedAfter(t *testing.T, s *etcd.Store, rev uint64, since time.Time, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		at, ok := s.CurrentAsOf(rev)
		if ok && at.After(since) {
			return at
		}
		if time.Now().After(deadline) {
			t.Fatalf("revision %d not confirmed after %v within %v (last: %v, %v)", rev, since.Format(time.StampMicro), within, at.Format(time.StampMicro), ok)
		}
		time.Sleep(interval / 5)
	}
}

// TestFreshness_QuietStoreStaysConfirmed: with no transaction at all, the
// store keeps confirming that its last commit is the latest, so a reader
// of a quiet store is not taken for a stale one.
func TestFreshness_QuietStoreStaysConfirmed(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openVia(t, srv.Endpoints[0], "/fresh-quiet/")
	rev := storetest.MustPut(t, s, "k", "v")
	mark := time.Now()
	time.Sleep(4 * interval)
	at := confirmedAfter(t, s, rev, mark.Add(2*interval), 40*interval)
	if age := time.Since(at); age > 40*interval {
		t.Errorf("last confirmation %v old; want about %v", age, interval)
	}
}

// TestFreshness_BehindReaderIsNotConfirmed: a commit made elsewhere ends
// the confirmations of the revisions before it: a reader that has not
// applied it stays as current as it was at the commit, while the
// commit's revision keeps being confirmed.
func TestFreshness_BehindReaderIsNotConfirmed(t *testing.T) {
	srv := etcdtest.Start(t)
	const prefix = "/fresh-behind/"
	a := openVia(t, srv.Endpoints[0], prefix)
	b := openVia(t, srv.Endpoints[0], prefix)
	before := storetest.MustPut(t, b, "k", "1")
	confirmedAfter(t, a, before, time.Now(), 40*interval)
	sent := time.Now()
	after := storetest.MustPut(t, b, "k", "2")
	confirmedAfter(t, a, after, time.Now(), 40*interval)
	time.Sleep(4 * interval)
	if at, ok := a.CurrentAsOf(after - 1); !ok || at.After(sent) {
		t.Errorf("revision %d, before a commit at %d, is confirmed as of %v, after the commit was sent at %v (ok %v)",
			after-1, after, at.Format(time.StampMicro), sent.Format(time.StampMicro), ok)
	}
}

// TestFreshness_CutOffStopsConfirming: a store cut off from etcd confirms
// nothing from then on; its reads and writes fail with ErrUnavailable
// after the request timeout, not at the caller's deadline nor never, and
// a caller's shorter deadline still ends them first. Once etcd is back it
// confirms again and writes succeed, without reopening the store.
func TestFreshness_CutOffStopsConfirming(t *testing.T) {
	srv := etcdtest.Start(t)
	proxy := etcdtest.StartProxy(t, srv.Endpoints[0])
	s := openVia(t, proxy.Addr, "/fresh-cut/")
	rev := storetest.MustPut(t, s, "k", "v")
	confirmedAfter(t, s, rev, time.Now(), 40*interval)

	proxy.Cut()
	cut := time.Now()
	put := func(ctx context.Context) error {
		_, err := s.Update(ctx, func(tx store.Tx) error { return tx.Put("k", []byte("w")) })
		return err
	}
	start := time.Now()
	err := put(context.Background())
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Update while cut off: %v; want ErrUnavailable", err)
	}
	if took := time.Since(start); took < reqTimeout || took > 10*reqTimeout {
		t.Errorf("Update failed after %v; want about the request timeout %v", took, reqTimeout)
	}
	err = s.View(context.Background(), func(tx store.ReadTx) error { _, _, err := tx.Get("k"); return err })
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("View while cut off: %v; want ErrUnavailable", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout/5)
	err = put(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Update with a deadline shorter than the request timeout: %v; want the caller's DeadlineExceeded", err)
	}
	if at, ok := s.CurrentAsOf(rev); !ok || at.After(cut) {
		t.Errorf("confirmed as of %v while cut off since %v", at.Format(time.StampMicro), cut.Format(time.StampMicro))
	}

	proxy.Restore()
	back := time.Now()
	confirmedAfter(t, s, rev, back, 10*time.Second)
	if _, err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Put("k", []byte("back")) }); err != nil {
		t.Fatalf("Update after etcd came back: %v", err)
	}
	if v := storetest.MustGet(t, s, "k"); string(v) != "back" {
		t.Errorf("k = %q", v)
	}
}

// TestFreshness_CommitCutOff: a commit sent while etcd stops answering
// fails with ErrUnavailable and ErrCommitUnknown: it may have been applied.
func TestFreshness_CommitCutOff(t *testing.T) {
	srv := etcdtest.Start(t)
	proxy := etcdtest.StartProxy(t, srv.Endpoints[0])
	s := openVia(t, proxy.Addr, "/fresh-commit/")
	runs := 0
	_, err := s.Update(context.Background(), func(tx store.Tx) error {
		runs++
		if _, _, err := tx.Get("k"); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		proxy.Cut() // after the reads, before the commit
		return tx.Put("k", []byte(fmt.Sprint(runs)))
	})
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, store.ErrCommitUnknown) {
		t.Fatalf("Update whose commit was cut off: %v; want ErrUnavailable and ErrCommitUnknown", err)
	}
	proxy.Restore()
}

// TestFreshness_EveryRequestBounded: each request a transaction makes
// after its first (Get, a page of Scan, the history of Changes) and
// Compact fail with ErrUnavailable within about the request timeout when
// etcd stops answering in the middle, rather than waiting for it.
func TestFreshness_EveryRequestBounded(t *testing.T) {
	srv := etcdtest.Start(t)
	proxy := etcdtest.StartProxy(t, srv.Endpoints[0])
	s := openVia(t, proxy.Addr, "/fresh-bounded/")
	first := storetest.MustPut(t, s, "a", "1")
	storetest.MustPut(t, s, "b", "2")
	ops := map[string]func(tx store.ReadTx) error{
		"Get": func(tx store.ReadTx) error { _, _, err := tx.Get("a"); return err },
		"Scan": func(tx store.ReadTx) error {
			return tx.Scan("", "", func(string, []byte, uint64) (bool, error) { return true, nil })
		},
		"Changes": func(tx store.ReadTx) error { _, err := tx.Changes(first - 1); return err },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			defer proxy.Restore()
			var start time.Time
			err := s.View(context.Background(), func(tx store.ReadTx) error {
				proxy.Cut()
				start = time.Now()
				return op(tx)
			})
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("%s while cut off: %v; want ErrUnavailable", name, err)
			}
			if took := time.Since(start); took > 10*reqTimeout {
				t.Errorf("%s failed after %v; want about the request timeout %v", name, took, reqTimeout)
			}
		})
	}
	t.Run("Compact", func(t *testing.T) {
		defer proxy.Restore()
		proxy.Cut()
		start := time.Now()
		if err := s.Compact(context.Background(), first); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Compact while cut off: %v; want ErrUnavailable", err)
		}
		if took := time.Since(start); took > 10*reqTimeout {
			t.Errorf("Compact failed after %v", took)
		}
	})
}
