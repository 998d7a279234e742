package service

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

// The services run without the gRPC edge: over a real store, answering
// errs kinds with their reasons.

// newStore opens a store in a temporary directory with account acme: top
// portal "top" (and its default subportal "top-default"), team "team" at
// it, and representatives alice (support and Live Guide) and bob (support
// only).
func newStore(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	write(t, st, func(tx store.Tx) error {
		acct := policy.Account{ID: "acme", DisplayName: "Acme"}
		if err := CreateAccount(tx, &acct); err != nil {
			return err
		}
		top := policy.Portal{ID: "top", Name: "Top", Functions: AllFunctions}
		var v errs.Violations
		if err := CheckPortalWrite(tx, &v, "acme", &top); err != nil {
			return err
		}
		if err := store.PutPortal(tx, "acme", &top); err != nil {
			return err
		}
		if err := CreateDefaultSubportal(tx, "acme", &top); err != nil {
			return err
		}
		if err := store.PutTeam(tx, "acme", &policy.Team{ID: "team", Name: "Team", PortalID: "top"}); err != nil {
			return err
		}
		for _, r := range []policy.Representative{
			{ID: "alice", DisplayName: "Alice", TeamID: "team", Functions: AllFunctions, LiveGuideEnabled: true},
			{ID: "bob", DisplayName: "Bob", TeamID: "team", Functions: AllFunctions},
		} {
			if err := store.PutRepresentative(tx, "acme", &r); err != nil {
				return err
			}
		}
		return nil
	})
	return st
}

func write(t *testing.T, st store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if _, err := st.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// refusal runs fn in a write and returns its error (nothing is committed
// when it fails).
func refusal(st store.Store, fn func(tx store.Tx) error) error {
	_, err := st.Update(context.Background(), fn)
	return err
}

func wantKind(t *testing.T, what string, err error, kind errs.Kind, reason string) {
	t.Helper()
	e, ok := errs.As(err)
	if !ok || e.Kind != kind || e.Reason != reason {
		t.Fatalf("%s: %v (%T), want %s %q", what, err, err, kind, reason)
	}
}

func TestPortals_Rules(t *testing.T) {
	st := newStore(t)
	// A portal under its own subportal is a cycle: a field violation.
	err := refusal(st, func(tx store.Tx) error {
		var v errs.Violations
		return CheckPortalWrite(tx, &v, "acme", &policy.Portal{ID: "top", Name: "Top", ParentID: "top-default"})
	})
	wantKind(t, "cycle", err, errs.Invalid, "")
	if e, _ := errs.As(err); e.Fields[0].Field != "portal.parent_id" {
		t.Fatalf("cycle names %v", e.Fields)
	}
	// The last subportal of a top portal stays.
	err = refusal(st, func(tx store.Tx) error {
		sub, err := GetPortal(tx, "acme", "top-default")
		if err != nil {
			return err
		}
		return BeforeDeletePortal(tx, "acme", &sub)
	})
	wantKind(t, "last subportal", err, errs.FailedPrecondition, ReasonLastSubportal)
	// A portal a team uses is not deleted.
	err = refusal(st, func(tx store.Tx) error {
		top, err := GetPortal(tx, "acme", "top")
		if err != nil {
			return err
		}
		return BeforeDeletePortal(tx, "acme", &top)
	})
	wantKind(t, "portal in use", err, errs.FailedPrecondition, ReasonInUse)
	// An unknown portal is NOT_FOUND, worded once.
	err = refusal(st, func(tx store.Tx) error { _, err := GetPortal(tx, "acme", "nope"); return err })
	wantKind(t, "unknown portal", err, errs.NotFound, "")
	if err.Error() != `portal "nope" not found` {
		t.Fatalf("unknown portal: %q", err.Error())
	}
}

func TestSessions_Rules(t *testing.T) {
	st := newStore(t)
	ctx := auth.NewContext(context.Background(), auth.Local)
	now := time.Now()
	// Bob is not enabled for Live Guide.
	err := refusal(st, func(tx store.Tx) error {
		return StartSession(tx, &policy.Session{AccountID: "acme", Kind: policy.SessionKindLiveGuide, RepresentativeID: "bob", CustomerID: "c", State: policy.SessionStateActive}, now)
	})
	wantKind(t, "bob in Live Guide", err, errs.FailedPrecondition, ReasonRepNotAllowed)
	// Support sessions start at a subportal.
	err = refusal(st, func(tx store.Tx) error {
		return StartSession(tx, &policy.Session{AccountID: "acme", Kind: policy.SessionKindSupport, RepresentativeID: "bob", CustomerID: "c", PortalID: "top", State: policy.SessionStateActive}, now)
	})
	wantKind(t, "top portal", err, errs.FailedPrecondition, ReasonNotSubportal)

	sess := policy.Session{AccountID: "acme", Kind: policy.SessionKindSupport, RepresentativeID: "bob", CustomerID: "c", PortalID: "top-default", State: policy.SessionStateActive}
	write(t, st, func(tx store.Tx) error { return StartSession(tx, &sess, now) })
	// At most MaxSpecialists at once, counted in the writing transaction.
	for i := range MaxSpecialists {
		write(t, st, func(tx store.Tx) error {
			_, err := InviteSpecialist(ctx, tx, sess.ID, policy.Specialist{ID: "sp-" + string(rune('a'+i)), DisplayName: "Sp"})
			return err
		})
	}
	err = refusal(st, func(tx store.Tx) error {
		_, err := InviteSpecialist(ctx, tx, sess.ID, policy.Specialist{ID: "sp-late", DisplayName: "Sp"})
		return err
	})
	wantKind(t, "specialist past the limit", err, errs.ResourceExhausted, ReasonSpecialistsLimit)
	// A caller of another account is refused before anything is said
	// about the session.
	other := auth.NewContext(context.Background(), auth.Caller{Name: "other", Role: auth.RoleDecider, AccountID: "other"})
	err = refusal(st, func(tx store.Tx) error { _, err := EndSession(other, tx, sess.ID, now, 0, 0); return err })
	wantKind(t, "other account's caller", err, errs.PermissionDenied, "")
	// Ending twice is refused; an unknown session has the one message.
	write(t, st, func(tx store.Tx) error { _, err := EndSession(ctx, tx, sess.ID, now, 5, 5); return err })
	err = refusal(st, func(tx store.Tx) error { _, err := EndSession(ctx, tx, sess.ID, now, 0, 0); return err })
	wantKind(t, "ended twice", err, errs.FailedPrecondition, ReasonSessionEnded)
	err = refusal(st, func(tx store.Tx) error { _, err := EndSession(ctx, tx, "s-nope", now, 0, 0); return err })
	if err == nil || err.Error() != errs.SessionNotFound("s-nope").Error() {
		t.Fatalf("unknown session: %v", err)
	}
}

func TestTokens_Bootstrap(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	bearer, created, err := BootstrapOperatorToken(ctx, st, "first", time.Now())
	if err != nil || !created || bearer == "" {
		t.Fatalf("first bootstrap: %q %v %v", bearer, created, err)
	}
	if _, again, err := BootstrapOperatorToken(ctx, st, "second", time.Now()); err != nil || again {
		t.Fatalf("second bootstrap created a token (%v)", err)
	}
	// Deleting an account revokes its credentials.
	tok := auth.Token{ID: "t-acme", Name: "acme admin", Role: auth.RoleAdmin, AccountID: "acme", Hash: "x"}
	write(t, st, func(tx store.Tx) error { return CreateToken(tx, &tok) })
	write(t, st, func(tx store.Tx) error { _, err := DeleteAccount(tx, "acme", "", 1000); return err })
	if err := st.View(ctx, func(tx store.ReadTx) error {
		got, err := store.GetToken(tx, "t-acme")
		if err == nil && !got.Revoked {
			t.Error("the deleted account's token is not revoked")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
