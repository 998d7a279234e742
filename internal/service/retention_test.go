package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

var retentionNow = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// retentionStores opens, per driver, an empty store with etcd's
// transaction limits: bbolt told those limits (every Update's function
// run twice, as an optimistic driver may) and a real etcd in-process.
func retentionStores(t *testing.T) map[string]store.Store {
	t.Helper()
	b, err := bolt.OpenWith(t.TempDir(), bolt.Options{Limits: store.Limits{MaxOps: 127, MaxTxnBytes: 1 << 20}, RetryUpdates: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	srv := etcdtest.Start(t)
	e, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints, Prefix: "/retention/"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return map[string]store.Store{"bolt": b, "etcd": e}
}

// liveFence returns the fence of a live term on st: on etcd a key under
// a lease, as the election's, else one whose Lost stays open.
func liveFence(t *testing.T, st store.Store) store.Fence {
	t.Helper()
	e, ok := st.(*etcd.Store)
	if !ok {
		return store.Fence{Lost: make(chan struct{})}
	}
	lease, err := e.Client().Grant(context.Background(), 60)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Client().Put(context.Background(), "/retention-term", "leader", clientv3.WithLease(lease.ID))
	if err != nil {
		t.Fatal(err)
	}
	return store.Fence{Lost: make(chan struct{}), Key: "/retention-term", Rev: resp.Header.Revision}
}

// putEvents writes n audit events recorded at when, ids rev-0000…, in
// transactions of 100.
func putEvents(t *testing.T, st store.Store, rev uint64, n int, when time.Time) {
	t.Helper()
	for i := 0; i < n; i += 100 {
		write(t, st, func(tx store.Tx) error {
			for j := i; j < min(n, i+100); j++ {
				e := store.AuditEvent{ID: store.AuditID(rev, j), Caller: "c", Time: when, RPC: "UpdateX", ResourceType: "account", ResourceID: "a"}
				if err := store.PutAuditEvent(tx, &e); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// auditIDs lists the ids of every stored audit event.
func auditIDs(t *testing.T, st store.Store) []string {
	t.Helper()
	var ids []string
	err := st.View(context.Background(), func(tx store.ReadTx) error {
		evs, _, err := store.ListAuditEvents(tx, "", 0, 0, func(*store.AuditEvent) bool { return true })
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// countingStore counts the Updates that committed.
type countingStore struct {
	store.Store
	mu      sync.Mutex
	commits int
}

func (c *countingStore) Update(ctx context.Context, fn func(store.Tx) error) (uint64, error) {
	before := c.Store.Revision()
	rev, err := c.Store.Update(ctx, fn)
	if err == nil && rev > before {
		c.mu.Lock()
		c.commits++
		c.mu.Unlock()
	}
	return rev, err
}

// TestAuditPruner_DeletesExpiredInBatches: on both drivers, with etcd's
// 127 operations per transaction, a run deletes every event older than
// the retention — 300 of them, in transactions the store accepts — and
// none younger; a second run finds nothing and commits nothing; a run
// under a lost leadership (store.Fence) deletes nothing.
func TestAuditPruner_DeletesExpiredInBatches(t *testing.T) {
	for name, st := range retentionStores(t) {
		t.Run(name, func(t *testing.T) {
			putEvents(t, st, 1, 300, retentionNow.Add(-48*time.Hour))
			putEvents(t, st, 2, 20, retentionNow.Add(-time.Hour))
			cs := &countingStore{Store: st}
			p := &AuditPruner{Store: cs, Retention: 24 * time.Hour, Now: func() time.Time { return retentionNow }}
			// As on the leader: under the fence of a live term (on etcd
			// its comparison shares the transaction's 128 with the
			// batch's reads).
			ctx := store.WithFence(context.Background(), liveFence(t, st))
			n, err := p.Prune(ctx)
			if err != nil || n != 300 {
				t.Fatalf("Prune = %d, %v; want 300", n, err)
			}
			if batch := AuditPruneBatch(st.Limits()); batch != 127 || cs.commits != 3 {
				t.Errorf("batch %d, %d commits; want 127 a commit, 3 commits", batch, cs.commits)
			}
			ids := auditIDs(t, st)
			if len(ids) != 20 || ids[0] != store.AuditID(2, 0) {
				t.Fatalf("left %d events (first %v); want the 20 younger ones", len(ids), ids[:min(1, len(ids))])
			}
			rev := st.Revision()
			if n, err := p.Prune(context.Background()); err != nil || n != 0 {
				t.Fatalf("second Prune = %d, %v; want 0", n, err)
			}
			if cs.commits != 3 {
				t.Errorf("a run with nothing to delete committed (revision %d → %d)", rev, st.Revision())
			}

			putEvents(t, st, 3, 5, retentionNow.Add(-48*time.Hour)) // after the young ones: kept until they go
			putEvents(t, st, 0, 5, retentionNow.Add(-48*time.Hour))
			lost := make(chan struct{})
			close(lost)
			fenced := store.WithFence(context.Background(), store.Fence{Lost: lost})
			if _, err := p.Prune(fenced); !errors.Is(err, store.ErrFenced) {
				t.Fatalf("Prune under a lost leadership = %v; want ErrFenced", err)
			}
			if ids := auditIDs(t, st); len(ids) != 30 {
				t.Fatalf("%d events after a fenced-off run; want 30", len(ids))
			}
			// Events are pruned oldest first, up to the first young one.
			if n, err := p.Prune(context.Background()); err != nil || n != 5 {
				t.Fatalf("Prune = %d, %v; want the 5 old events before the young ones", n, err)
			}
		})
	}
}

// TestAuditPruner_Run: the job prunes at once and then every interval,
// tells Ran the outcome of every run and logs one line per run; with a
// retention of 0 it keeps everything and stops at once.
func TestAuditPruner_Run(t *testing.T) {
	st := newStore(t)
	putEvents(t, st, 1, 10, retentionNow.Add(-48*time.Hour))
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	now := retentionNow
	type run struct {
		pruned int
		err    error
	}
	runs := make(chan run, 16)
	p := &AuditPruner{Store: st, Retention: 24 * time.Hour, Now: func() time.Time { return now }, Log: log, Interval: 20 * time.Millisecond,
		Ran: func(pruned int, _ time.Time, err error) { runs <- run{pruned, err} }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	if r := <-runs; r.pruned != 10 || r.err != nil {
		t.Fatalf("first run = %+v; want 10 pruned", r)
	}
	if r := <-runs; r.pruned != 0 || r.err != nil {
		t.Fatalf("second run = %+v; want 0 pruned", r)
	}
	cancel()
	<-done
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, `msg="audit retention" pruned=10 older_than=2026-03-13T09:00:00Z`) || strings.Count(out, `msg="audit retention"`) < 2 {
		t.Errorf("log = %s; want one line per run, the first with pruned=10", out)
	}

	putEvents(t, st, 2, 3, retentionNow.Add(-48*time.Hour))
	off := &AuditPruner{Store: st, Now: func() time.Time { return now }, Log: log,
		Ran: func(int, time.Time, error) { t.Error("a run with retention 0") }}
	finished := make(chan struct{})
	go func() { defer close(finished); off.Run(context.Background()) }()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("Run with retention 0 did not return")
	}
	if ids := auditIDs(t, st); len(ids) != 3 {
		t.Errorf("%d events with retention 0; want all 3 kept", len(ids))
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestAuditRetentionInterval(t *testing.T) {
	for _, c := range []struct{ retention, want time.Duration }{
		{400 * 24 * time.Hour, time.Hour}, {10 * time.Hour, time.Hour}, {time.Hour, 6 * time.Minute}, {time.Second, time.Second},
	} {
		if got := AuditRetentionInterval(c.retention); got != c.want {
			t.Errorf("AuditRetentionInterval(%v) = %v; want %v", c.retention, got, c.want)
		}
	}
}
