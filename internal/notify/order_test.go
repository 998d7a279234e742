package notify_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// recordingBackend accepts every message and reports each delivery.
type recordingBackend struct {
	mu        sync.Mutex
	delivered map[string]time.Time // session → first delivery
}

func (b *recordingBackend) Deliver(_ context.Context, m *store.OutboxMessage) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.delivered[m.SessionID]; !ok {
		b.delivered[m.SessionID] = time.Now()
	}
	return nil
}

func (b *recordingBackend) has(session string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.delivered[session]
	return ok
}

func awaitDelivered(t *testing.T, b *recordingBackend, session string, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); !b.has(session); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the record of %s was not delivered within %v", session, within)
		}
	}
}

// TestSender_MessageCommittedOutOfIDOrder: on etcd two replicas' writes
// commit concurrently, so a message may commit after the sender has
// seen one with a higher id (ids take the revision the writer read at).
// The sender delivers it on the commit, not at its next full look at the
// outbox (MaxIdle, an hour here).
func TestSender_MessageCommittedOutOfIDOrder(t *testing.T) {
	srv := etcdtest.Start(t)
	open := func() *etcd.Store {
		s, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints, Prefix: "/order/"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	leaderStore, replicaX, replicaY := open(), open(), open()
	b := &recordingBackend{delivered: map[string]time.Time{}}
	stop := runSender(t, notify.Options{Store: leaderStore, Backend: b, MaxIdle: time.Hour})
	defer stop()
	// Let the sender make its first full pass over the empty outbox.
	enqueue(t, replicaY, "s-first")
	awaitDelivered(t, b, "s-first", 10*time.Second)

	// X reads, queues its message and is held before its commit; Y
	// queues one with a higher id (its session sorts after) and commits.
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	type result struct {
		id  string
		err error
	}
	xDone := make(chan result, 1)
	go func() {
		m := store.OutboxMessage{AccountID: "acme", SessionID: "s-a", To: "ops@example.com", XML: "<x/>"}
		_, err := replicaX.Update(context.Background(), func(tx store.Tx) error {
			if err := store.EnqueueOutbox(tx, &m); err != nil {
				return err
			}
			once.Do(func() { close(held); <-release })
			return nil
		})
		xDone <- result{m.ID, err}
	}()
	<-held
	y := enqueue(t, replicaY, "s-b")
	awaitDelivered(t, b, "s-b", 10*time.Second)
	close(release)
	x := <-xDone
	if x.err != nil {
		t.Fatal(x.err)
	}
	if x.id >= y.ID {
		t.Fatalf("X's message committed with id %s, not below Y's %s", x.id, y.ID)
	}
	awaitDelivered(t, b, "s-a", 5*time.Second)
}
