package server

import (
	"context"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
)

func (e *testEnv) mustSweep(lc SessionLifecycle, wantEnded, wantDeleted int) {
	e.t.Helper()
	ended, deleted, err := e.srv.SweepSessions(ctxT(e.t), lc)
	if err != nil {
		e.t.Fatalf("SweepSessions: %v", err)
	}
	if ended != wantEnded || deleted != wantDeleted {
		e.t.Fatalf("SweepSessions ended %d and deleted %d sessions; want %d and %d", ended, deleted, wantEnded, wantDeleted)
	}
}

func (e *testEnv) storedSessionKeys() []string {
	e.t.Helper()
	var keys []string
	err := e.store.View(context.Background(), func(tx store.ReadTx) error {
		for _, prefix := range []string{"sess/", "t/acme/session/"} {
			if err := tx.Scan(prefix, "", func(k string, _ []byte, _ uint64) (bool, error) {
				keys = append(keys, k)
				return true, nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// TestSweepSessions: active sessions older than MaxAge end as EndSession
// would end them (SESSION_ENDED, completed-session record queued, audited);
// ended sessions older than Retention are deleted with their index entry
// (NOT_FOUND); a sweep with nothing to do commits nothing.
func TestSweepSessions(t *testing.T) {
	t.Parallel()
	clk := &outboxClock{now: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)}
	e := MustStart(t, "", func(o *Options) { o.Now = clk.Now })
	ctx := ctxT(t)
	supportFixture(t, e)
	e.setNotificationEmail("corp", "ops@example.com")
	if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "guide", DisplayName: "Guide", LiveGuideEnabled: true}}); err != nil {
		t.Fatal(err)
	}
	startLG := func() string {
		resp, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme",
			Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "guide", CustomerId: "cust-1"})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetSession().GetId()
	}
	chat := func(id string) (*gatehousev1.CheckFeatureResponse, error) {
		return e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: id, Actor: agent("guide"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	}
	lc := SessionLifecycle{MaxAge: 24 * time.Hour, Retention: 30 * 24 * time.Hour}

	support := e.MustStartSupport("alice", "corp-default").GetId()
	old := startLG()
	clk.Advance(23 * time.Hour)
	young := startLG()

	// Nothing is due: no commit, no revision.
	rev := e.store.Revision()
	e.mustSweep(lc, 0, 0)
	if got := e.store.Revision(); got != rev {
		t.Fatalf("a sweep with nothing to do moved the revision from %d to %d", rev, got)
	}

	// 25 h after the first two started, they are ended; the young one is not.
	clk.Advance(2 * time.Hour)
	e.mustSweep(lc, 2, 0)
	if resp, err := chat(old); err != nil || resp.GetDecision().GetAllowed() || resp.GetDecision().GetReason() != gatehousev1.Reason_REASON_SESSION_ENDED {
		t.Fatalf("check in a session ended by the sweep: %v %v; want SESSION_ENDED", resp, err)
	}
	if resp, err := chat(young); err != nil || resp.GetDecision().GetReason() == gatehousev1.Reason_REASON_SESSION_ENDED {
		t.Fatalf("check in a younger session: %v %v; want it answered as active", resp, err)
	}
	got, err := e.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: support})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetSession().GetState() != gatehousev1.SessionState_SESSION_STATE_ENDED || !got.GetSession().GetEndTime().AsTime().Equal(clk.Now()) {
		t.Fatalf("support session after the sweep: %v; want ENDED at %v", got.GetSession(), clk.Now())
	}
	if q := e.queuedNotifications(); len(q) != 1 || q[0].SessionID != support {
		t.Fatalf("outbox after the sweep ended a support session: %+v; want its completed-session record", q)
	}
	audit, err := e.admin.ListAuditEvents(ctx, &gatehousev1.ListAuditEventsRequest{AccountId: "acme", ResourceType: "session", ResourceId: old})
	if err != nil {
		t.Fatal(err)
	}
	ev := audit.GetEvents()
	if len(ev) != 2 || ev[1].GetCaller() != "session sweeper" || ev[1].GetRpc() != "SweepSessions" || !strings.Contains(ev[1].GetAfterJson(), `"state":2`) {
		t.Fatalf("audit events of the swept session: %v; want its start, then its end by the session sweeper", ev)
	}
	e.mustSweep(lc, 0, 0) // ended ones are not ended again

	// The young one ends normally; 30 days after the ends, all are deleted.
	if _, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: young}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30*24*time.Hour - time.Minute)
	e.mustSweep(lc, 0, 0)
	clk.Advance(2 * time.Minute)
	e.mustSweep(lc, 0, 3)
	for _, id := range []string{support, old, young} {
		_, err := chat(id)
		wantCode(t, err, codes.NotFound)
		_, err = e.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: id})
		wantCode(t, err, codes.NotFound)
	}
	if keys := e.storedSessionKeys(); len(keys) != 0 {
		t.Fatalf("store still holds %q after the sessions were deleted", keys)
	}
	// The representatives are no longer held by active sessions.
	if _, err := e.admin.DeleteRepresentative(ctx, &gatehousev1.DeleteRepresentativeRequest{AccountId: "acme", Id: "guide"}); err != nil {
		t.Fatalf("delete a representative whose sessions were swept: %v", err)
	}
}

// TestSweepSessions_Batches: a backlog is swept in transactions of at most
// Batch sessions, and a zero lifecycle sweeps nothing.
func TestSweepSessions_Batches(t *testing.T) {
	t.Parallel()
	clk := &outboxClock{now: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)}
	e := MustStart(t, "", func(o *Options) { o.Now = clk.Now })
	e.MustCreateAccount("acme")
	for range 5 {
		e.MustStartSession("acme")
	}
	clk.Advance(48 * time.Hour)
	e.mustSweep(SessionLifecycle{}, 0, 0)
	rev := e.store.Revision()
	e.mustSweep(SessionLifecycle{MaxAge: time.Hour, Batch: 2}, 5, 0)
	if got := e.store.Revision(); got != rev+3 {
		t.Fatalf("5 sessions in batches of 2 took %d commits; want 3", got-rev)
	}
	e.mustSweep(SessionLifecycle{Retention: time.Nanosecond, Batch: 2}, 0, 0) // ended just now, at the clock's time
	clk.Advance(time.Second)
	e.mustSweep(SessionLifecycle{Retention: time.Nanosecond, Batch: 2}, 0, 5)
	if keys := e.storedSessionKeys(); len(keys) != 0 {
		t.Fatalf("store still holds %q", keys)
	}
}
