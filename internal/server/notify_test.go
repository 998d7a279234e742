package server

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
)

// outboxClock is a settable clock for Options.Now.
type outboxClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *outboxClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *outboxClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (e *testEnv) setNotificationEmail(portal, email string) {
	e.t.Helper()
	_, err := e.admin.UpdatePortal(ctxT(e.t), &gatehousev1.UpdatePortalRequest{AccountId: "acme",
		Portal: &gatehousev1.Portal{Id: portal, NotificationEmail: email}, UpdateMask: mask("notification_email")})
	if err != nil {
		e.t.Fatalf("set notification_email of %s to %q: %v", portal, email, err)
	}
}

func (e *testEnv) queuedNotifications() []store.OutboxMessage {
	e.t.Helper()
	var out []store.OutboxMessage
	err := e.store.View(context.Background(), func(tx store.ReadTx) (err error) {
		out, _, err = store.ListOutbox(tx, "", 0)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *testEnv) mustEndSession(req *gatehousev1.EndSessionRequest) *gatehousev1.Session {
	e.t.Helper()
	resp, err := e.sessions.EndSession(ctxT(e.t), req)
	if err != nil {
		e.t.Fatalf("EndSession(%v): %v", req, err)
	}
	return resp.GetSession()
}

func TestNotify_CompletedSessionIsQueuedWithTheSessionEnd(t *testing.T) {
	t.Parallel()
	clk := &outboxClock{now: time.Date(2026, 3, 14, 9, 26, 53, 500_000_000, time.UTC)}
	e := MustStart(t, "", func(o *Options) { o.Now = clk.Now })
	ctx := ctxT(t)
	supportFixture(t, e)
	e.setNotificationEmail("corp", "ops@example.com")

	// A support session at the default subportal: the top portal's address.
	sess := e.MustStartSupport("alice", "corp-default")
	clk.Advance(time.Hour + 2*time.Minute + 3*time.Second)
	ended := e.mustEndSession(&gatehousev1.EndSessionRequest{SessionId: sess.GetId(), CustomerRating: 4, RepresentativeRating: 5})
	q := e.queuedNotifications()
	if len(q) != 1 {
		t.Fatalf("outbox holds %d messages, want 1", len(q))
	}
	m := q[0]
	rev := ended.GetRevision()
	if m.ID != store.OutboxID(rev, sess.GetId()) || m.SessionID != sess.GetId() || m.AccountID != "acme" ||
		m.To != "ops@example.com" || m.Attempts != 0 || !m.Created.Equal(clk.Now()) {
		t.Errorf("queued %+v", m)
	}
	// One commit wrote both the ended session and the message.
	var changes []store.Change
	err := e.store.View(ctxT(t), func(tx store.ReadTx) (err error) {
		changes, err = tx.Changes(rev - 1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 || changes[0].Revision != rev ||
		!slices.Contains(changes[0].Keys, "t/acme/session/"+sess.GetId()) || !slices.Contains(changes[0].Keys, "outbox/"+m.ID) {
		t.Errorf("the commit of the session end (revision %d) is %+v; want the session and the message in it", rev, changes)
	}
	rec, err := notify.Parse([]byte(m.XML))
	if err != nil {
		t.Fatal(err)
	}
	want := notify.Record{
		XMLName: rec.XMLName, SessionID: sess.GetId(), AccountID: "acme", PortalID: "corp-default", PortalName: "Corp (default)",
		RepresentativeID: "alice", RepresentativeName: "alice", CustomerID: "cust-alice",
		StartTime: "2026-03-14T09:26:53Z", EndTime: "2026-03-14T10:28:56Z", Duration: "PT1H2M3S",
		CustomerRating: 4, RepresentativeRating: 5,
	}
	if rec != want || rec.XMLName.Space != notify.Namespace {
		t.Errorf("record = %+v\nwant %+v", rec, want)
	}

	// Ending it again is refused and queues nothing.
	_, err = e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: sess.GetId()})
	wantCode(t, err, codes.FailedPrecondition)
	if n := len(e.queuedNotifications()); n != 1 {
		t.Fatalf("a refused EndSession changed the outbox to %d messages", n)
	}

	// A subportal's own address wins over its parent's; no rating, no
	// rating elements.
	e.setNotificationEmail("corp-eu", "eu@example.com")
	eu := e.MustStartSupport("bob", "corp-eu")
	e.mustEndSession(&gatehousev1.EndSessionRequest{SessionId: eu.GetId()})
	q = e.queuedNotifications()
	if len(q) != 2 || q[1].SessionID != eu.GetId() || q[1].To != "eu@example.com" {
		t.Fatalf("outbox = %+v; want a second message to eu@example.com", q)
	}
	rec, err = notify.Parse([]byte(q[1].XML))
	if err != nil {
		t.Fatal(err)
	}
	if rec.PortalID != "corp-eu" || rec.PortalName != "EU" || rec.CustomerRating != 0 || rec.RepresentativeRating != 0 {
		t.Errorf("record = %+v", rec)
	}

	// Live Guide sessions are not notified.
	if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "guide", DisplayName: "Guide", LiveGuideEnabled: true}}); err != nil {
		t.Fatal(err)
	}
	lg, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme",
		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "guide", CustomerId: "cust-1"})
	if err != nil {
		t.Fatal(err)
	}
	e.mustEndSession(&gatehousev1.EndSessionRequest{SessionId: lg.GetSession().GetId(), CustomerRating: 3})

	// Nor are sessions at portals without an address in their chain.
	e.setNotificationEmail("corp", "")
	plain := e.MustStartSupport("alice", "corp-default")
	e.mustEndSession(&gatehousev1.EndSessionRequest{SessionId: plain.GetId(), CustomerRating: 1})
	if q := e.queuedNotifications(); len(q) != 2 {
		t.Fatalf("outbox holds %d messages, want still 2: %+v", len(q), q)
	}

	// The queue survives a restart.
	e = e.Restart()
	if q := e.queuedNotifications(); len(q) != 2 {
		t.Fatalf("after a restart the outbox holds %d messages, want 2", len(q))
	}
}

// TestNotify_SenderWritesRecords runs the sender over the server's store
// with the directory backend: the file holds the queued record.
func TestNotify_SenderWritesRecords(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	supportFixture(t, e)
	e.setNotificationEmail("corp", "ops@example.com")
	dir := filepath.Join(t.TempDir(), "outbox")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		notify.NewSender(notify.Options{Store: e.store, Backend: &notify.Dir{Path: dir}}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done }) // before the store closes

	sess := e.MustStartSupport("alice", "corp-default")
	ended := e.mustEndSession(&gatehousev1.EndSessionRequest{SessionId: sess.GetId(), RepresentativeRating: 2})
	path := filepath.Join(dir, notify.FileName(store.OutboxID(ended.GetRevision(), sess.GetId())))
	deadline := time.Now().Add(10 * time.Second)
	for len(e.queuedNotifications()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sender did not deliver the record")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := notify.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if rec.SessionID != sess.GetId() || rec.RepresentativeRating != 2 || rec.CustomerRating != 0 {
		t.Errorf("file holds %+v", rec)
	}
}

// TestNotifications_ListRetryDelete: operators see the queued
// notifications with their failed attempts, make one due again to a
// corrected recipient (a failure recorded meanwhile keeps the correction),
// and drop one; both writes are audited under the notification's account.
func TestNotifications_ListRetryDelete(t *testing.T) {
	t.Parallel()
	clk := &outboxClock{now: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)}
	woken := make(chan struct{}, 10)
	e := MustStart(t, "", func(o *Options) {
		o.Now = clk.Now
		o.NotificationRetried = func() { woken <- struct{}{} }
	})
	ctx := ctxT(t)
	supportFixture(t, e)
	e.setNotificationEmail("corp", "typo@exmaple.com")
	first := e.mustEndSession(&gatehousev1.EndSessionRequest{SessionId: e.MustStartSupport("alice", "corp-default").GetId()})
	second := e.mustEndSession(&gatehousev1.EndSessionRequest{SessionId: e.MustStartSupport("bob", "corp-eu").GetId()})
	q := e.queuedNotifications()
	if len(q) != 2 {
		t.Fatalf("%d queued; want 2", len(q))
	}
	// The sender failed once at the first.
	if _, err := e.store.Update(ctx, func(tx store.Tx) error {
		_, err := store.RecordOutboxFailure(tx, q[0].ID, "550 no such user", clk.Now().Add(time.Hour))
		return err
	}); err != nil {
		t.Fatal(err)
	}

	list, err := e.admin.ListNotifications(ctx, &gatehousev1.ListNotificationsRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := list.GetNotifications()
	if len(n) != 1 || n[0].GetId() != q[0].ID || n[0].GetSessionId() != first.GetId() || n[0].GetAttempts() != 1 ||
		n[0].GetLastError() != "550 no such user" || !n[0].GetNextAttemptTime().AsTime().Equal(clk.Now().Add(time.Hour)) ||
		n[0].GetTo() != "typo@exmaple.com" || n[0].GetAccountId() != "acme" || list.GetNextPageToken() == "" {
		t.Fatalf("first page: %v", list)
	}
	rest, err := e.admin.ListNotifications(ctx, &gatehousev1.ListNotificationsRequest{PageSize: 1, PageToken: list.GetNextPageToken()})
	if err != nil || len(rest.GetNotifications()) != 1 || rest.GetNotifications()[0].GetSessionId() != second.GetId() || rest.GetNextPageToken() != "" {
		t.Fatalf("second page: %v %v", rest, err)
	}
	if other, err := e.admin.ListNotifications(ctx, &gatehousev1.ListNotificationsRequest{AccountId: "nobody"}); err != nil || len(other.GetNotifications()) != 0 {
		t.Fatalf("another account's notifications: %v %v", other, err)
	}

	_, err = e.admin.RetryNotification(ctx, &gatehousev1.RetryNotificationRequest{Id: q[0].ID, To: "Ops <ops@example.com>"})
	wantInvalid(t, err, "to")
	retried, err := e.admin.RetryNotification(ctx, &gatehousev1.RetryNotificationRequest{Id: q[0].ID, To: "ops@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if r := retried.GetNotification(); r.GetTo() != "ops@example.com" || r.GetNextAttemptTime() != nil || r.GetAttempts() != 1 {
		t.Fatalf("retried: %v; want due now, to the new address, the attempt still counted", r)
	}
	select {
	case <-woken:
	default:
		t.Fatal("RetryNotification did not wake the sender")
	}
	// A failure the sender records afterwards keeps the correction.
	var after store.OutboxMessage
	if _, err := e.store.Update(ctx, func(tx store.Tx) (err error) {
		after, err = store.RecordOutboxFailure(tx, q[0].ID, "421 try later", clk.Now().Add(time.Minute))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if after.To != "ops@example.com" || after.Attempts != 2 {
		t.Fatalf("after another failure: %+v", after)
	}

	if _, err := e.admin.DeleteNotification(ctx, &gatehousev1.DeleteNotificationRequest{Id: q[1].ID}); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.DeleteNotification(ctx, &gatehousev1.DeleteNotificationRequest{Id: q[1].ID})
	wantCode(t, err, codes.NotFound)
	_, err = e.admin.RetryNotification(ctx, &gatehousev1.RetryNotificationRequest{Id: q[1].ID})
	wantCode(t, err, codes.NotFound)
	if q := e.queuedNotifications(); len(q) != 1 || q[0].ID != retried.GetNotification().GetId() {
		t.Fatalf("outbox after the drop: %+v", q)
	}
	audit, err := e.admin.ListAuditEvents(ctx, &gatehousev1.ListAuditEventsRequest{AccountId: "acme", ResourceType: "notification"})
	if err != nil {
		t.Fatal(err)
	}
	var rpcs []string
	for _, ev := range audit.GetEvents() {
		rpcs = append(rpcs, ev.GetRpc()[strings.LastIndexByte(ev.GetRpc(), '/')+1:]+" "+ev.GetResourceId())
	}
	want := []string{"EndSession " + q[0].ID, "EndSession " + q[1].ID, "RetryNotification " + q[0].ID, "DeleteNotification " + q[1].ID}
	if !slices.Equal(rpcs, want) {
		t.Fatalf("audit events of notifications: %q; want %q", rpcs, want)
	}
}
