package observe_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/observe"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// auditedPut writes key through an AuditTx, as the server's writes do,
// and flushes its audit event; between runs only the first run waits for
// hold (when not nil) after the flush.
func auditedPut(st store.Store, key string, hold func()) (uint64, error) {
	var once sync.Once
	return st.Update(context.Background(), func(tx store.Tx) error {
		at := observe.NewAuditTx(tx)
		if err := at.Put(key, []byte(`{"id":"x"}`)); err != nil {
			return err
		}
		if err := at.Flush("test", "CreateAccount", time.Now()); err != nil {
			return err
		}
		if hold != nil {
			once.Do(hold)
		}
		return nil
	})
}

// TestAuditTx_EventsFollowCommitOrder: on etcd, replicas write
// concurrently and an audit id takes the revision its transaction read
// at; still, of two audited writes the one that commits later has the
// higher audit ids, so that a reader continuing after an id (a page token,
// a tail of the log) never misses an event. Here X reads, is held, then
// Y reads at a later revision (after an unaudited commit) and commits
// first.
func TestAuditTx_EventsFollowCommitOrder(t *testing.T) {
	srv := etcdtest.Start(t)
	open := func() *etcd.Store {
		s, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints, Prefix: "/audit-order/"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	x, y := open(), open()
	held, release := make(chan struct{}), make(chan struct{})
	xDone := make(chan error, 1)
	go func() {
		_, err := auditedPut(x, "acct/x", func() { close(held); <-release })
		xDone <- err
	}()
	<-held
	if _, err := y.Update(context.Background(), func(tx store.Tx) error { return tx.Put("unaudited", []byte("1")) }); err != nil {
		t.Fatal(err)
	}
	yRev, err := auditedPut(y, "acct/y", nil)
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-xDone; err != nil {
		t.Fatal(err)
	}
	var events []store.AuditEvent
	if err := y.View(context.Background(), func(tx store.ReadTx) (err error) {
		events, _, err = store.ListAuditEvents(tx, "", 0, 0, func(*store.AuditEvent) bool { return true })
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("%d audit events; want 2", len(events))
	}
	if events[0].ResourceID != "y" || events[1].ResourceID != "x" {
		t.Errorf("audit log in id order: %s (%s), %s (%s); want y's (committed first, at %d) before x's",
			events[0].ID, events[0].ResourceID, events[1].ID, events[1].ResourceID, yRev)
	}
}
