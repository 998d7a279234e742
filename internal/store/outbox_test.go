package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

func openOutboxStore(t *testing.T, dir string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(dir)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// enqueue queues a message for session in its own commit and returns it.
func enqueueMsg(t *testing.T, s store.Store, session, to string) store.OutboxMessage {
	t.Helper()
	m := store.OutboxMessage{AccountID: "acme", SessionID: session, To: to, XML: "<x>" + session + "</x>",
		Created: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	rev, err := s.Update(context.Background(), func(tx store.Tx) error { return store.EnqueueOutbox(tx, &m) })
	if err != nil {
		t.Fatalf("EnqueueOutbox(%s): %v", session, err)
	}
	if want := store.OutboxID(rev, session); m.ID != want {
		t.Fatalf("EnqueueOutbox set id %q, want %q", m.ID, want)
	}
	return m
}

func listOutbox(t *testing.T, s store.Store) []store.OutboxMessage {
	t.Helper()
	var out []store.OutboxMessage
	err := s.View(context.Background(), func(tx store.ReadTx) (err error) {
		out, _, err = store.ListOutbox(tx, "", 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOutboxID(t *testing.T) {
	for _, tc := range []struct {
		rev  uint64
		sess string
		want string
	}{
		{1, "s-a", "00000000000000000001-s-a"},
		{1234567890, "s-b", "00000000001234567890-s-b"},
		{^uint64(0), "s-c", "18446744073709551615-s-c"},
	} {
		if got := store.OutboxID(tc.rev, tc.sess); got != tc.want {
			t.Errorf("OutboxID(%d, %q) = %q, want %q", tc.rev, tc.sess, got, tc.want)
		}
	}
}

func TestOutbox_EnqueueListUpdateDelete(t *testing.T) {
	dir := t.TempDir()
	s := openOutboxStore(t, dir)
	ctx := context.Background()

	// Twelve commits cross the 9 -> 10 boundary, where unpadded revisions
	// would sort out of order.
	var queued []store.OutboxMessage
	for i := range 12 {
		queued = append(queued, enqueueMsg(t, s, fmt.Sprintf("s-%02d", 12-i), "ops@example.com"))
	}
	got := listOutbox(t, s)
	if !reflect.DeepEqual(got, queued) {
		t.Fatalf("ListOutbox = %+v\nwant the queue order %+v", got, queued)
	}

	// Paging continues after the last id and reports whether more follow.
	var paged []store.OutboxMessage
	after := ""
	for pages := 0; ; pages++ {
		var page []store.OutboxMessage
		var more bool
		err := s.View(ctx, func(tx store.ReadTx) (err error) {
			page, more, err = store.ListOutbox(tx, after, 5)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 5 || pages > 3 {
			t.Fatalf("page %d has %d messages", pages, len(page))
		}
		paged = append(paged, page...)
		if !more {
			break
		}
		after = page[len(page)-1].ID
	}
	if !reflect.DeepEqual(paged, queued) {
		t.Fatalf("paged ListOutbox = %d messages, want %d in order", len(paged), len(queued))
	}

	// Attempt bookkeeping is kept.
	m := queued[3]
	m.Attempts = 2
	m.LastError = "451 try again later"
	m.NextAttempt = time.Date(2026, 3, 4, 5, 7, 0, 0, time.UTC)
	if _, err := s.Update(ctx, func(tx store.Tx) error { return store.UpdateOutbox(tx, &m) }); err != nil {
		t.Fatal(err)
	}
	err := s.View(ctx, func(tx store.ReadTx) error {
		got, err := store.GetOutbox(tx, m.ID)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("GetOutbox after UpdateOutbox = %+v, want %+v", got, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A delivered message is gone, and a late update does not bring it back.
	if _, err := s.Update(ctx, func(tx store.Tx) error { return store.DeleteOutbox(tx, m.ID) }); err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(ctx, func(tx store.Tx) error { return store.UpdateOutbox(tx, &m) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateOutbox of a deleted message = %v, want ErrNotFound", err)
	}
	rev := s.Revision()
	if _, err := s.Update(ctx, func(tx store.Tx) error { return store.DeleteOutbox(tx, m.ID) }); err != nil {
		t.Fatalf("deleting a missing message: %v", err)
	}
	if s.Revision() != rev {
		t.Errorf("deleting a missing message committed revision %d", s.Revision())
	}
	if n := len(listOutbox(t, s)); n != len(queued)-1 {
		t.Fatalf("%d messages left, want %d", n, len(queued)-1)
	}

	// Everything survives a restart.
	want := listOutbox(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openOutboxStore(t, dir)
	if got := listOutbox(t, s2); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen ListOutbox = %+v\nwant %+v", got, want)
	}
}

func TestOutbox_EnqueueIsTransactional(t *testing.T) {
	s := openOutboxStore(t, t.TempDir())
	ctx := context.Background()
	boom := errors.New("boom")
	_, err := s.Update(ctx, func(tx store.Tx) error {
		m := store.OutboxMessage{SessionID: "s-1", To: "ops@example.com"}
		if err := store.EnqueueOutbox(tx, &m); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if got := listOutbox(t, s); len(got) != 0 {
		t.Fatalf("a rolled-back transaction left %+v in the outbox", got)
	}

	// One session, one message per commit; bad messages are refused.
	_, err = s.Update(ctx, func(tx store.Tx) error {
		for range 2 {
			m := store.OutboxMessage{SessionID: "s-1", To: "ops@example.com"}
			if err := store.EnqueueOutbox(tx, &m); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "already queued") {
		t.Fatalf("queueing a session twice in one commit = %v, want an error", err)
	}
	for _, m := range []store.OutboxMessage{{To: "ops@example.com"}, {SessionID: "s-1"}, {SessionID: "a/b", To: "ops@example.com"}} {
		_, err := s.Update(ctx, func(tx store.Tx) error { return store.EnqueueOutbox(tx, &m) })
		if err == nil {
			t.Errorf("EnqueueOutbox(%+v) = nil, want an error", m)
		}
	}
}

// TestOutbox_KeysAreStoreWide checks that outbox writes are seen in Changes
// but belong to no account, so the decision snapshot skips them.
func TestOutbox_KeysAreStoreWide(t *testing.T) {
	s := openOutboxStore(t, t.TempDir())
	before := s.Revision()
	m := enqueueMsg(t, s, "s-1", "ops@example.com")
	changes, err := storetest.Changes(t, s, before)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || len(changes[0].Keys) != 1 {
		t.Fatalf("Changes = %+v, want one commit with one key", changes)
	}
	key := changes[0].Keys[0]
	if key != "outbox/"+m.ID {
		t.Errorf("key = %q, want outbox/%s", key, m.ID)
	}
	if info := store.ParseKey(key); info != (store.KeyInfo{}) {
		t.Errorf("ParseKey(%q) = %+v, want no account", key, info)
	}
}
