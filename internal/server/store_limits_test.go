package server

import (
	"fmt"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// etcdLimits are etcd's default transaction bounds.
var etcdLimits = store.Limits{MaxOps: 128, MaxTxnBytes: 3 << 19}

// TestStoreLimits_LargeWritesStayWithin runs the writes that grow with the
// data — deleting a large account, sweeping a backlog of sessions, purging
// expired audit events — over a store with etcd's default transaction
// limits (and every write run twice): each finishes in transactions the
// store accepts.
func TestStoreLimits_LargeWritesStayWithin(t *testing.T) {
	t.Parallel()
	clk := &outboxClock{now: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)}
	e := mustStartStore(t, "", bolt.Options{Limits: etcdLimits, RetryUpdates: 1}, func(o *Options) {
		o.Now = clk.Now
		o.AuditRetention = 24 * time.Hour
	})
	ctx := ctxT(t)
	e.MustCreateAccount("big")
	e.MustCreateAccount("busy")
	for i := 0; i < 1000; i += 100 {
		storetest.MustUpdate(t, e.store, func(tx store.Tx) error {
			for j := i; j < i+100; j++ {
				if err := store.PutAllowlistEntry(tx, "big", &policy.AllowlistEntry{ID: fmt.Sprintf("e%04d", j), Pattern: "h.example.com"}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Expired audit events, more than one transaction may delete.
	for i := 0; i < 300; i += 100 {
		storetest.MustUpdate(t, e.store, func(tx store.Tx) error {
			for j := i; j < i+100; j++ {
				ev := store.AuditEvent{ID: store.AuditID(0, j), Caller: "old", Time: clk.Now().Add(-48 * time.Hour), RPC: "old", ResourceType: "account", ResourceID: "x"}
				if err := store.PutAuditEvent(tx, &ev); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// A backlog of sessions due for the sweeper.
	for range 120 {
		e.MustStartSession("busy")
	}
	clk.Advance(25 * time.Hour)
	ended, _, err := e.srv.SweepSessions(ctx, SessionLifecycle{MaxAge: 24 * time.Hour})
	if err != nil || ended != 120 {
		t.Fatalf("SweepSessions under etcd's limits: ended %d, %v; want 120", ended, err)
	}
	if _, err := e.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: "big"}); err != nil {
		t.Fatalf("DeleteAccount of 1 000 entries under etcd's limits: %v", err)
	}
	if left := e.keysOf("big"); len(left) != 0 {
		t.Errorf("%d keys of the deleted account left", len(left))
	}
	// The audit retention job deletes the expired events — the 300 and
	// those of the writes before the clock moved on — and keeps those of
	// the sweep and the deletion.
	n, err := e.srv.PruneAuditEvents(ctx)
	if err != nil || n < 300 {
		t.Fatalf("PruneAuditEvents under etcd's limits: %d, %v; want at least 300", n, err)
	}
	var kept []store.AuditEvent
	storetest.MustView(t, e.store, func(tx store.ReadTx) (err error) {
		kept, _, err = store.ListAuditEvents(tx, "", 0, 0, func(*store.AuditEvent) bool { return true })
		return err
	})
	if len(kept) == 0 {
		t.Fatal("no audit event left: the sweep's and the deletion's events are younger than the retention")
	}
	for _, ev := range kept {
		if ev.Time.Before(clk.Now().Add(-24 * time.Hour)) {
			t.Fatalf("event %s of %v kept; older than the retention", ev.ID, ev.Time)
		}
	}
}
