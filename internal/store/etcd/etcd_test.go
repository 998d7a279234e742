package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

var prefixes atomic.Int64

// open returns a store on srv under a prefix of its own.
func open(t testing.TB, srv *etcdtest.Server, prefix string) *etcd.Store {
	t.Helper()
	if prefix == "" {
		prefix = fmt.Sprintf("/gatehouse-test/%d/", prefixes.Add(1))
	}
	s, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the driver conformance suite against a real etcd
// with etcd's default limits (--max-txn-ops 128, --max-request-bytes
// 1.5 MiB), every test on a fresh prefix.
func TestConformance(t *testing.T) {
	srv := etcdtest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, srv, "") })
}

func TestLimits_FollowEtcdDefaults(t *testing.T) {
	srv := etcdtest.Start(t)
	lim := open(t, srv, "").Limits()
	if lim.MaxOps != 127 || lim.MaxTxnBytes <= 1<<20 || lim.MaxTxnBytes >= 1536*1024 {
		t.Errorf("Limits() = %+v; want 127 ops (one for the change record) and just under 1.5 MiB", lim)
	}
}

// TestOpen_Unreachable: an etcd nobody answers at fails Open within the
// bounded wait, with an error naming the endpoints.
func TestOpen_Unreachable(t *testing.T) {
	eps := []string{"127.0.0.1:1", "127.0.0.1:2"}
	start := time.Now()
	_, err := etcd.Open(context.Background(), etcd.Options{Endpoints: eps, DialTimeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("Open of an unreachable etcd succeeded")
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1,127.0.0.1:2") {
		t.Errorf("error %q does not name the endpoints", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %v; want about the 500ms dial timeout", d)
	}
}

// TestDamagedValues: a value under the prefix that is not what the driver
// wrote (a flipped byte, a value moved to another key, a foreign write) is
// a *store.DamagedError naming its key, from Get and from Scan, and a scan
// can resume after it.
func TestDamagedValues(t *testing.T) {
	srv := etcdtest.Start(t)
	const prefix = "/damaged/"
	s := open(t, srv, prefix)
	storetest.MustPut(t, s, "a", "1", "b", "2", "c", "3", "d", "4")
	raw := s.Client()
	ctx := context.Background()
	get := func(k string) string {
		r, err := raw.Get(ctx, prefix+"kv/"+k)
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("raw get %s: %v", k, err)
		}
		return string(r.Kvs[0].Value)
	}
	flipped := []byte(get("b"))
	flipped[len(flipped)-1] ^= 1
	for k, v := range map[string]string{"b": string(flipped), "c": get("a"), "d": "plain"} {
		if _, err := raw.Put(ctx, prefix+"kv/"+k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"b", "c", "d"} {
		_, err := storetest.Get(t, s, k)
		var de *store.DamagedError
		if !errors.As(err, &de) || de.Key != k || !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("Get(%q) error = %v; want a DamagedError for %q", k, err, k)
		}
	}
	var seen []string
	after := ""
	for range 10 {
		err := s.View(ctx, func(tx store.ReadTx) error {
			return tx.Scan("", after, func(k string, _ []byte, _ uint64) (bool, error) {
				seen = append(seen, k)
				after = k
				return true, nil
			})
		})
		var de *store.DamagedError
		if err == nil {
			break
		}
		if !errors.As(err, &de) {
			t.Fatalf("Scan error %v; want a DamagedError", err)
		}
		seen = append(seen, "!"+de.Key)
		after = de.Key
	}
	if got := strings.Join(seen, " "); got != "a !b !c !d" {
		t.Errorf("Scan resuming after damage saw %q; want %q", got, "a !b !c !d")
	}
	// A damaged value can be overwritten.
	storetest.MustPut(t, s, "b", "fixed")
	if got := string(storetest.MustGet(t, s, "b")); got != "fixed" {
		t.Errorf("b = %q after rewriting", got)
	}
}

// TestReplicas: two stores on one prefix are two replicas. A write on one
// is signalled on the other and readable there at the revision it
// returned; concurrent read-modify-writes from both lose no update, with
// Get guards and with scan guards.
func TestReplicas(t *testing.T) {
	srv := etcdtest.Start(t)
	const prefix = "/replicas/"
	a, b := open(t, srv, prefix), open(t, srv, prefix)
	ch, cancel := b.Subscribe()
	defer cancel()
	rev := storetest.MustPut(t, a, "k", "from a")
	select {
	case <-ch:
	case <-time.After(storetest.Wait):
		t.Fatal("replica b had no signal of a's commit")
	}
	if b.Revision() < rev {
		t.Errorf("b.Revision() = %d after the signal; want >= %d", b.Revision(), rev)
	}
	storetest.MustView(t, b, func(tx store.ReadTx) error {
		v, r, err := tx.Get("k")
		if err != nil || string(v) != "from a" || r != rev {
			t.Errorf("b reads k = %q at %d, %v; want a's write at %d", v, r, err, rev)
		}
		return nil
	})

	const rounds = 30
	t.Run("counter", func(t *testing.T) {
		storetest.MustPut(t, a, "n", "0")
		incr := func(s store.Store) error {
			_, err := s.Update(context.Background(), func(tx store.Tx) error {
				v, _, err := tx.Get("n")
				if err != nil {
					return err
				}
				n, _ := strconv.Atoi(string(v))
				return tx.Put("n", []byte(strconv.Itoa(n+1)))
			})
			return err
		}
		runBoth(t, a, b, rounds, incr)
		if got := string(storetest.MustGet(t, b, "n")); got != strconv.Itoa(2*rounds) {
			t.Errorf("n = %s after %d increments on two replicas", got, 2*rounds)
		}
	})
	t.Run("scan guard", func(t *testing.T) {
		// Each commit adds a key whose value is how many keys the range
		// holds with it: serial commits write 1, 2, 3, …; a scan that
		// missed the other replica's concurrent commit writes a count
		// twice.
		var i atomic.Int64
		add := func(s store.Store) error {
			k := fmt.Sprintf("set/%03d", i.Add(1))
			_, err := s.Update(context.Background(), func(tx store.Tx) error {
				n := 0
				if err := tx.Scan("set/", "", func(string, []byte, uint64) (bool, error) { n++; return true, nil }); err != nil {
					return err
				}
				return tx.Put(k, []byte(strconv.Itoa(n+1)))
			})
			return err
		}
		runBoth(t, a, b, rounds, add)
		_, vals := storetest.MustScan(t, a, "set/", "")
		seen := map[string]bool{}
		for _, v := range vals {
			if seen[v] {
				t.Errorf("two commits counted %s keys: a scan missed a concurrent commit", v)
			}
			seen[v] = true
		}
		if len(vals) != 2*rounds {
			t.Errorf("%d keys; want %d", len(vals), 2*rounds)
		}
	})
}

func runBoth(t *testing.T, a, b store.Store, rounds int, fn func(store.Store) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, s := range []store.Store{a, b} {
		wg.Go(func() {
			for range rounds {
				if err := fn(s); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestCommitTooLargeForEtcd: keys long enough that what a commit sends
// exceeds etcd's request limit, although keys and values stay within
// Limits, fail with ErrTxnTooLarge and commit nothing.
func TestCommitTooLargeForEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	s := open(t, srv, "")
	before := s.Revision()
	long := strings.Repeat("k", 11000)
	_, err := s.Update(context.Background(), func(tx store.Tx) error {
		for i := range 127 {
			if err := tx.Put(fmt.Sprintf("%s/%03d", long, i), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, store.ErrTxnTooLarge) {
		t.Fatalf("Update error = %v; want ErrTxnTooLarge", err)
	}
	storetest.MustNoNewChanges(t, s, before)
}

// TestWriteInView: a View's transaction refuses writes.
func TestWriteInView(t *testing.T) {
	srv := etcdtest.Start(t)
	s := open(t, srv, "")
	storetest.MustView(t, s, func(rtx store.ReadTx) error {
		tx, ok := rtx.(store.Tx)
		if !ok {
			return nil
		}
		if err := tx.Put("k", []byte("v")); err == nil {
			t.Error("Put in a View succeeded")
		}
		if err := tx.Delete("k"); err == nil {
			t.Error("Delete in a View succeeded")
		}
		return nil
	})
}

// TestOpen_Auth: with etcd's auth on, Open with the right user and
// password works and with a wrong password fails naming the endpoints
// and saying why, not that etcd did not answer.
func TestOpen_Auth(t *testing.T) {
	srv := etcdtest.Start(t)
	root, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints, Prefix: "/auth/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := root.Client()
	if _, err := c.UserAdd(ctx, "root", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	root.Close()

	s, err := etcd.Open(ctx, etcd.Options{Endpoints: srv.Endpoints, Prefix: "/auth/", Username: "root", Password: "s3cret"})
	if err != nil {
		t.Fatalf("Open with the right password: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	storetest.MustPut(t, s, "k", "v")

	// etcd checks a password with bcrypt, which takes seconds under -race:
	// the timeout only bounds the wait, the refusal comes first.
	_, err = etcd.Open(ctx, etcd.Options{Endpoints: srv.Endpoints, Prefix: "/auth/", Username: "root", Password: "wrong", DialTimeout: 30 * time.Second})
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, srv.Endpoints[0]) || strings.Contains(msg, "did not answer") || !strings.Contains(msg, "authentication failed") {
		t.Errorf("error %q; want it to name %s and say authentication failed", msg, srv.Endpoints[0])
	}
}

// TestClusterLimitsBelowOptions: when the cluster's --max-txn-ops or
// --max-request-bytes are smaller than the driver was told, etcd's refusal
// is the store's ErrTooManyOps or ErrTxnTooLarge, and nothing commits.
func TestClusterLimitsBelowOptions(t *testing.T) {
	srv := etcdtest.Start(t, func(cfg *embed.Config) {
		cfg.MaxTxnOps = 16
		cfg.MaxRequestBytes = 200 << 10
	})
	s := open(t, srv, "")
	before := s.Revision()
	_, err := s.Update(context.Background(), func(tx store.Tx) error {
		for i := range 20 {
			if err := tx.Put(fmt.Sprintf("k/%02d", i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, store.ErrTooManyOps) {
		t.Errorf("20 keys with --max-txn-ops 16: %v; want ErrTooManyOps", err)
	}
	_, err = s.Update(context.Background(), func(tx store.Tx) error {
		return tx.Put("big", make([]byte, 500<<10))
	})
	if !errors.Is(err, store.ErrTxnTooLarge) {
		t.Errorf("500 KiB with --max-request-bytes 200 KiB: %v; want ErrTxnTooLarge", err)
	}
	storetest.MustNoNewChanges(t, s, before)
	storetest.MustNotExist(t, s, "big")
}
