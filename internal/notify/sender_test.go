package notify_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

// openStore opens the store in dir; it is closed when the test ends unless
// closed before.
func openStore(t *testing.T, dir string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(dir)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// enqueue queues the record of an ended session, in its own commit, the
// way the server does, and returns the message.
func enqueue(t *testing.T, st store.Store, sessionID string) store.OutboxMessage {
	t.Helper()
	start := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	sess := policy.Session{ID: sessionID, AccountID: "acme", Kind: policy.SessionKindSupport, State: policy.SessionStateEnded,
		RepresentativeID: "alice", CustomerID: "cust-1", PortalID: "corp-default", StartTime: start, EndTime: start.Add(10 * time.Minute)}
	doc, err := notify.Marshal(&sess, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := store.OutboxMessage{AccountID: "acme", SessionID: sessionID, To: "ops@example.com", XML: string(doc), Created: sess.EndTime}
	if _, err := st.Update(context.Background(), func(tx store.Tx) error { return store.EnqueueOutbox(tx, &m) }); err != nil {
		t.Fatal(err)
	}
	return m
}

func outbox(t *testing.T, st store.Store) []store.OutboxMessage {
	t.Helper()
	var out []store.OutboxMessage
	err := st.View(context.Background(), func(tx store.ReadTx) (err error) {
		out, _, err = store.ListOutbox(tx, "", 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runSender runs a sender until the returned stop is called (or the test
// ends); stop fails the test unless Run returns within 5s.
func runSender(t *testing.T, o notify.Options) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s := notify.NewSender(o)
	go func() { defer close(done); s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Error("Sender.Run did not return within 5s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func fixedBackoff(d time.Duration) func(int) time.Duration {
	return func(int) time.Duration { return d }
}

// clock is a settable clock for the sender.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestSender_DeliversOverSMTP(t *testing.T) {
	st := openStore(t, t.TempDir())
	ms := startMailServer(t)
	var queued []store.OutboxMessage
	for i := range 3 {
		queued = append(queued, enqueue(t, st, fmt.Sprintf("s-%d", i)))
	}
	// MaxIdle is long: a message queued while the sender runs must be
	// sent because of the commit, not because of a periodic look.
	runSender(t, notify.Options{Store: st, Backend: &notify.SMTP{Addr: ms.addr, From: from}, MaxIdle: time.Hour})
	waitFor(t, "the queued messages to be delivered", func() bool { return len(outbox(t, st)) == 0 })
	queued = append(queued, enqueue(t, st, "s-late"))
	waitFor(t, "the message queued later to be delivered", func() bool { return len(outbox(t, st)) == 0 })

	got, data := ms.snapshot()
	if len(got) != len(queued) || data != len(queued) {
		t.Fatalf("server accepted %d messages in %d DATA commands, want %d", len(got), data, len(queued))
	}
	for i, r := range got { // oldest first
		m := queued[i]
		if want := notify.MessageID(m.ID, from); r.messageID != want {
			t.Errorf("message %d has Message-ID %q, want %q", i, r.messageID, want)
		}
		if _, text := body(t, r.raw); strings.ReplaceAll(text, "\r\n", "\n") != m.XML {
			t.Errorf("message %d body =\n%s\nwant\n%s", i, text, m.XML)
		}
	}
}

// TestSender_RetriesWithBackoff steps a sender through a server that
// refuses three times: each failure is recorded on the message, nothing is
// tried before the backoff has passed, and the message is sent once.
func TestSender_RetriesWithBackoff(t *testing.T) {
	st := openStore(t, t.TempDir())
	ms := startMailServer(t)
	ms.set(func(ms *mailServer) { ms.failData = 3 })
	clk := &clock{now: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}
	s := notify.NewSender(notify.Options{
		Store: st, Backend: &notify.SMTP{Addr: ms.addr, From: from}, Now: clk.Now,
		Backoff: func(failures int) time.Duration { return time.Duration(failures) * time.Minute },
	})
	m := enqueue(t, st, "s-retry")
	ctx := ctxT(t)
	for failures := 1; failures <= 3; failures++ {
		if err := s.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		q := outbox(t, st)
		if len(q) != 1 {
			t.Fatalf("after failure %d the outbox holds %d messages", failures, len(q))
		}
		want := clk.Now().Add(time.Duration(failures) * time.Minute)
		if q[0].ID != m.ID || q[0].Attempts != failures || !strings.Contains(q[0].LastError, "451") || !q[0].NextAttempt.Equal(want) {
			t.Fatalf("after failure %d: %+v; want attempts %d, a 451 error, next attempt %v", failures, q[0], failures, want)
		}
		// Not due yet: no attempt.
		clk.Advance(time.Duration(failures)*time.Minute - time.Second)
		if err := s.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		if _, data := ms.snapshot(); data != failures {
			t.Fatalf("%d DATA commands before the backoff passed, want %d", data, failures)
		}
		clk.Advance(time.Second)
	}
	if err := s.SendDue(ctx); err != nil {
		t.Fatal(err)
	}
	if q := outbox(t, st); len(q) != 0 {
		t.Fatalf("outbox still holds %+v", q)
	}
	got, data := ms.snapshot()
	if len(got) != 1 || data != 4 || got[0].messageID != notify.MessageID(m.ID, from) {
		t.Fatalf("server accepted %d messages after %d DATA commands, want 1 after 4", len(got), data)
	}
	if err := s.SendDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := ms.snapshot(); len(got) != 1 {
		t.Fatalf("a delivered message was sent again")
	}
}

// TestSender_RunRetriesUntilServerRecovers runs the sender against a
// server that fails first and succeeds later.
func TestSender_RunRetriesUntilServerRecovers(t *testing.T) {
	st := openStore(t, t.TempDir())
	ms := startMailServer(t)
	ms.set(func(ms *mailServer) { ms.failData = 2 })
	m := enqueue(t, st, "s-flaky")
	runSender(t, notify.Options{Store: st, Backend: &notify.SMTP{Addr: ms.addr, From: from},
		Backoff: fixedBackoff(20 * time.Millisecond), MaxIdle: time.Hour})
	waitFor(t, "delivery", func() bool { return len(outbox(t, st)) == 0 })
	got, data := ms.snapshot()
	if len(got) != 1 || data != 3 {
		t.Fatalf("server accepted %d messages after %d DATA commands, want 1 after 3", len(got), data)
	}
	if got[0].messageID != notify.MessageID(m.ID, from) {
		t.Errorf("Message-ID %q", got[0].messageID)
	}
}

// TestSender_RestartLosesAndDuplicatesNothing stops the daemon (sender and
// store) while messages are still refused, queues one more while no sender
// runs, reopens the same store file and checks that every message reaches
// the server exactly once.
func TestSender_RestartLosesAndDuplicatesNothing(t *testing.T) {
	dir := t.TempDir()
	ms := startMailServer(t)
	st := openStore(t, dir)
	var ids []string
	for i := 1; i <= 5; i++ {
		ids = append(ids, enqueue(t, st, fmt.Sprintf("s-%d", i)).ID)
	}
	// Before the restart the server takes s-1 and s-2 and refuses the rest.
	accepted := map[string]bool{notify.MessageID(ids[0], from): true, notify.MessageID(ids[1], from): true}
	ms.set(func(ms *mailServer) { ms.refuse = func(id string) bool { return !accepted[id] } })
	stop := runSender(t, notify.Options{Store: st, Backend: &notify.SMTP{Addr: ms.addr, From: from}, Backoff: fixedBackoff(10 * time.Millisecond)})
	waitFor(t, "two deliveries and failed attempts at the other three", func() bool {
		q := outbox(t, st)
		if len(q) != 3 {
			return false
		}
		for _, m := range q {
			if m.Attempts < 1 {
				return false
			}
		}
		return true
	})
	stop()
	ids = append(ids, enqueue(t, st, "s-6").ID) // queued while no sender runs
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openStore(t, dir)
	q := outbox(t, st)
	var left []string
	for _, m := range q {
		left = append(left, m.ID)
		if m.SessionID != "s-6" && (m.Attempts < 1 || m.LastError == "") {
			t.Errorf("attempts at %s were not kept across the restart: %+v", m.ID, m)
		}
	}
	if !slices.Equal(left, ids[2:]) {
		t.Fatalf("after the restart the outbox holds %q, want %q", left, ids[2:])
	}
	ms.set(func(ms *mailServer) { ms.refuse = nil })
	runSender(t, notify.Options{Store: st, Backend: &notify.SMTP{Addr: ms.addr, From: from}, Backoff: fixedBackoff(10 * time.Millisecond)})
	waitFor(t, "the outbox to empty", func() bool { return len(outbox(t, st)) == 0 })
	counts := ms.countByID()
	for _, id := range ids {
		if n := counts[notify.MessageID(id, from)]; n != 1 {
			t.Errorf("%s was accepted %d times, want exactly once", id, n)
		}
	}
	if len(counts) != len(ids) {
		t.Errorf("server accepted %d distinct messages, want %d", len(counts), len(ids))
	}
}

// closingBackend delivers, then closes the store before the sender can
// delete the message: a process dying right after the server accepted.
type closingBackend struct {
	notify.Backend
	st store.Store
}

func (b closingBackend) Deliver(ctx context.Context, m *store.OutboxMessage) error {
	if err := b.Backend.Deliver(ctx, m); err != nil {
		return err
	}
	return b.st.Close()
}

// TestSender_CrashAfterAcceptanceResendsWithSameMessageID documents the
// one duplicate at-least-once delivery allows, and that it can be dropped
// by Message-ID.
func TestSender_CrashAfterAcceptanceResendsWithSameMessageID(t *testing.T) {
	dir := t.TempDir()
	ms := startMailServer(t)
	st := openStore(t, dir)
	m := enqueue(t, st, "s-crash")
	smtpBackend := &notify.SMTP{Addr: ms.addr, From: from}
	err := notify.NewSender(notify.Options{Store: st, Backend: closingBackend{smtpBackend, st}}).SendDue(ctxT(t))
	if !errors.Is(err, store.ErrClosed) {
		t.Fatalf("SendDue = %v, want the delete to fail with ErrClosed", err)
	}
	st = openStore(t, dir)
	if q := outbox(t, st); len(q) != 1 || q[0].ID != m.ID {
		t.Fatalf("after the crash the outbox holds %+v, want the message", q)
	}
	if err := notify.NewSender(notify.Options{Store: st, Backend: smtpBackend}).SendDue(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if q := outbox(t, st); len(q) != 0 {
		t.Fatalf("outbox holds %+v", q)
	}
	if n := ms.countByID()[notify.MessageID(m.ID, from)]; n != 2 {
		t.Fatalf("server has %d copies, want 2 with the same Message-ID", n)
	}
}

// TestSender_ShutdownAbandonsAttempt stops the sender while the server
// holds its answer: Run returns at once, and the message stays queued with
// no failure counted, to be sent by the next sender.
func TestSender_ShutdownAbandonsAttempt(t *testing.T) {
	st := openStore(t, t.TempDir())
	ms := startMailServer(t)
	ms.set(func(ms *mailServer) { ms.stall = make(chan struct{}) })
	m := enqueue(t, st, "s-stall")
	stop := runSender(t, notify.Options{Store: st, Backend: &notify.SMTP{Addr: ms.addr, From: from}})
	waitFor(t, "the server to hold a message", func() bool {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		return ms.stalled == 1
	})
	start := time.Now()
	stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %v to return", d)
	}
	q := outbox(t, st)
	if len(q) != 1 || q[0].Attempts != 0 || q[0].LastError != "" {
		t.Fatalf("after shutdown the outbox holds %+v, want the message with no failure counted", q)
	}
	ms.set(func(ms *mailServer) { close(ms.stall); ms.stall = nil })
	if err := notify.NewSender(notify.Options{Store: st, Backend: &notify.SMTP{Addr: ms.addr, From: from}}).SendDue(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := ms.countByID()[notify.MessageID(m.ID, from)]; n != 1 || len(outbox(t, st)) != 0 {
		t.Fatalf("accepted %d times, outbox %d", n, len(outbox(t, st)))
	}
}

func TestSender_DirBackend(t *testing.T) {
	st := openStore(t, t.TempDir())
	dir := filepath.Join(t.TempDir(), "outbox")
	a, b := enqueue(t, st, "s-a"), enqueue(t, st, "s-b")
	runSender(t, notify.Options{Store: st, Backend: &notify.Dir{Path: dir}})
	waitFor(t, "the outbox to empty", func() bool { return len(outbox(t, st)) == 0 })
	for _, m := range []store.OutboxMessage{a, b} {
		got, err := os.ReadFile(filepath.Join(dir, m.ID+".xml"))
		if err != nil || string(got) != m.XML {
			t.Errorf("%s.xml: %v\n%s", m.ID, err, got)
		}
	}
}

func TestDefaultBackoff(t *testing.T) {
	for _, tc := range []struct {
		failures int
		lo, hi   time.Duration
	}{
		{0, 500 * time.Millisecond, time.Second},
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{5, 8 * time.Second, 16 * time.Second},
		{10, 256 * time.Second, 512 * time.Second},
		{11, 5 * time.Minute, 10 * time.Minute},
		{64, 5 * time.Minute, 10 * time.Minute},
		{1 << 30, 5 * time.Minute, 10 * time.Minute},
	} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := notify.DefaultBackoff(tc.failures)
			if d < tc.lo || d > tc.hi {
				t.Errorf("DefaultBackoff(%d) = %v, want within [%v, %v]", tc.failures, d, tc.lo, tc.hi)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("DefaultBackoff(%d) has no jitter", tc.failures)
		}
	}
}

// TestSender_WakeSendsARetriedMessageAtOnce: a message made due again by
// an operator (its next attempt cleared, as RetryNotification does) is
// sent as soon as Wake is called, not at the next full pass an hour away.
func TestSender_WakeSendsARetriedMessageAtOnce(t *testing.T) {
	st := openStore(t, t.TempDir())
	ms := startMailServer(t)
	ms.set(func(ms *mailServer) {
		ms.rcptErr = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	})
	m := enqueue(t, st, "s-typo")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s := notify.NewSender(notify.Options{Store: st, Backend: &notify.SMTP{Addr: ms.addr, From: from}, Backoff: fixedBackoff(time.Hour), MaxIdle: time.Hour})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the first failed attempt", func() bool {
		q := outbox(t, st)
		return len(q) == 1 && q[0].Attempts == 1
	})

	ms.set(func(ms *mailServer) { ms.rcptErr = nil })
	if _, err := st.Update(ctxT(t), func(tx store.Tx) error {
		cur, err := store.GetOutbox(tx, m.ID)
		if err != nil {
			return err
		}
		cur.NextAttempt, cur.To = time.Time{}, "ops@example.com"
		return store.UpdateOutbox(tx, &cur)
	}); err != nil {
		t.Fatal(err)
	}
	s.Wake()
	waitFor(t, "delivery after Wake", func() bool { return len(outbox(t, st)) == 0 })
	if got, _ := ms.snapshot(); len(got) != 1 || got[0].to[0] != "ops@example.com" {
		t.Fatalf("accepted %+v; want one message to the corrected address", got)
	}
}
