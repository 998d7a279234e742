package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var allSentinels = []error{
	client.ErrInvalidArgument, client.ErrNotFound, client.ErrAlreadyExists, client.ErrPermissionDenied, client.ErrUnauthenticated,
	client.ErrFailedPrecondition, client.ErrResourceExhausted, client.ErrAborted, client.ErrUnavailable, client.ErrDataLoss,
	client.ErrInternal, client.ErrSessionNotFound, client.ErrOverloaded, client.ErrRepresentativeNotAllowed, client.ErrPortalClosed,
	client.ErrSessionEnded, client.ErrActorNotInSession, client.ErrNotSupportSession, client.ErrNotSubportal,
	client.ErrFunctionDisabled, client.ErrSpecialistLimit, client.ErrChainTooDeep, client.ErrEtagMismatch, client.ErrResourceInUse,
	context.DeadlineExceeded, context.Canceled,
}

// wantErr checks that err is a *client.Error with code that matches
// exactly the sentinels want, and that the status is still reachable.
func wantErr(t *testing.T, name string, err error, code codes.Code, want ...error) *client.Error {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Errorf("%s: err = %v (%T), want a *client.Error", name, err, err)
		return nil
	}
	if status.Code(err) != code || ce.Code != code {
		t.Errorf("%s: status.Code = %v, Code = %v, want %v (%v)", name, status.Code(err), ce.Code, code, err)
	}
	if st, ok := status.FromError(err); !ok || st.Message() != ce.Message {
		t.Errorf("%s: status.FromError = %v, %v", name, st, ok)
	}
	for _, s := range allSentinels {
		is, wanted := errors.Is(err, s), false
		for _, w := range want {
			wanted = wanted || w == s
		}
		if is != wanted {
			t.Errorf("%s: errors.Is(err, %v) = %v, want %v (err %v)", name, s, is, wanted, err)
		}
	}
	return ce
}

// TestErrors_FromServer: every refusal the real server gives a session
// server maps to its sentinels.
func TestErrors_FromServer(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, nil)
	mustFixture(t, g)
	c := dial(t, g.addr)
	ctx := ctxT(t)
	lg, err := c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeID: "alice", CustomerID: "cust-1"})
	if err != nil {
		t.Fatal(err)
	}
	sup, err := c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeID: "bob", CustomerID: "cust-2", PortalID: "corp-eu"})
	if err != nil {
		t.Fatal(err)
	}
	chat := func(id string) client.CheckRequest {
		return client.CheckRequest{SessionID: id, Actor: customer, Feature: gatehousev1.Feature_FEATURE_CHAT}
	}

	_, err = c.Check(ctx, client.CheckRequest{Actor: agent})
	if ce := wantErr(t, "Check(invalid)", err, codes.InvalidArgument, client.ErrInvalidArgument); ce != nil {
		fields := map[string]bool{}
		for _, v := range ce.Violations {
			fields[v.Field] = v.Description != ""
		}
		if !fields["session_id"] {
			t.Errorf("Check(invalid): violations %v, want session_id described", ce.Violations)
		}
	}
	_, err = c.CheckMany(ctx, []client.CheckRequest{chat(lg.GetId()), {SessionID: "BAD ID", Actor: agent, Feature: gatehousev1.Feature_FEATURE_CHAT}})
	wantErr(t, "CheckMany(invalid)", err, codes.InvalidArgument, client.ErrInvalidArgument)

	for name, call := range map[string]func() error{
		"Check": func() error { _, err := c.Check(ctx, chat("nope")); return err },
		"CheckMany": func() error {
			_, err := c.CheckMany(ctx, []client.CheckRequest{chat(lg.GetId()), chat("nope")})
			return err
		},
		"GetSession": func() error { _, err := c.GetSession(ctx, "nope"); return err },
		"GetSessionPolicy": func() error {
			_, err := c.GetSessionPolicy(ctx, client.PolicyRequest{SessionID: "nope", Actor: customer})
			return err
		},
		"EndSession":       func() error { _, err := c.EndSession(ctx, "nope", client.Ratings{}); return err },
		"InviteSpecialist": func() error { _, err := c.InviteSpecialist(ctx, "nope", "spec", "Spec"); return err },
		"RemoveSpecialist": func() error { _, err := c.RemoveSpecialist(ctx, "nope", "spec"); return err },
	} {
		wantErr(t, name+"(unknown session)", call(), codes.NotFound, client.ErrNotFound, client.ErrSessionNotFound)
	}
	// NOT_FOUND of something else than the call's session.
	_, err = c.StartSession(ctx, client.StartRequest{AccountID: "nobody", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeID: "alice", CustomerID: "c"})
	wantErr(t, "StartSession(unknown account)", err, codes.NotFound, client.ErrNotFound)
	_, err = c.RemoveSpecialist(ctx, sup.GetId(), "never-invited")
	wantErr(t, "RemoveSpecialist(unknown specialist)", err, codes.NotFound, client.ErrNotFound)

	_, err = c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeID: "bob", CustomerID: "c"})
	wantErr(t, "StartSession(rep not enabled)", err, codes.FailedPrecondition, client.ErrFailedPrecondition, client.ErrRepresentativeNotAllowed)
	_, err = c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeID: "bob", CustomerID: "c", PortalID: "corp"})
	wantErr(t, "StartSession(top portal)", err, codes.FailedPrecondition, client.ErrFailedPrecondition, client.ErrNotSubportal)
	_, err = c.InviteSpecialist(ctx, lg.GetId(), "spec", "Spec")
	wantErr(t, "InviteSpecialist(Live Guide)", err, codes.FailedPrecondition, client.ErrFailedPrecondition, client.ErrNotSupportSession)
	_, err = c.GetSessionPolicy(ctx, client.PolicyRequest{SessionID: lg.GetId(), Actor: client.Actor{Role: gatehousev1.Role_ROLE_CUSTOMER, ID: "stranger"}})
	wantErr(t, "GetSessionPolicy(stranger)", err, codes.PermissionDenied, client.ErrPermissionDenied, client.ErrActorNotInSession)

	// A representative without the invite function.
	if _, err := g.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "carol", DisplayName: "Carol", TeamId: "support", Functions: &gatehousev1.SupportFunctions{}}}); err != nil {
		t.Fatal(err)
	}
	carol, err := c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeID: "carol", CustomerID: "c", PortalID: "corp-eu"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.InviteSpecialist(ctx, carol.GetId(), "spec", "Spec")
	wantErr(t, "InviteSpecialist(function off)", err, codes.FailedPrecondition, client.ErrFailedPrecondition, client.ErrFunctionDisabled)

	for i := range 10 {
		_, err = c.InviteSpecialist(ctx, sup.GetId(), fmt.Sprintf("spec-%d", i), "Spec")
		if err != nil {
			break
		}
	}
	// No RetryInfo: refused at once, not retried.
	wantErr(t, "InviteSpecialist(over the limit)", err, codes.ResourceExhausted, client.ErrResourceExhausted, client.ErrSpecialistLimit)

	if _, err := c.EndSession(ctx, lg.GetId(), client.Ratings{}); err != nil {
		t.Fatal(err)
	}
	_, err = c.EndSession(ctx, lg.GetId(), client.Ratings{})
	wantErr(t, "EndSession(ended)", err, codes.FailedPrecondition, client.ErrFailedPrecondition, client.ErrSessionEnded)
}

// TestErrors_PortalClosed: a closed portal's refusal carries the next
// opening time.
func TestErrors_PortalClosed(t *testing.T) {
	t.Parallel()
	monday := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC) // Monday 19:00 in Berlin
	g := mustStart(t, false, func(o *server.Options) { o.Now = func() time.Time { return monday } })
	mustFixture(t, g)
	ctx := ctxT(t)
	bh, err := g.admin.CreateBusinessHours(ctx, &gatehousev1.CreateBusinessHoursRequest{AccountId: "acme", BusinessHours: &gatehousev1.BusinessHours{
		Id: "office", Name: "Office", TimeZone: "Europe/Berlin",
		Weekly: []*gatehousev1.WeeklyWindow{{Day: gatehousev1.Weekday_WEEKDAY_WEDNESDAY, Start: "09:00", End: "17:00"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme",
		Portal: &gatehousev1.Portal{Id: "corp", BusinessHoursId: bh.GetBusinessHours().GetId()}, UpdateMask: mask("business_hours_id")}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, g.addr)
	_, err = c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeID: "bob", CustomerID: "c", PortalID: "corp-eu"})
	ce := wantErr(t, "StartSession(closed)", err, codes.FailedPrecondition, client.ErrFailedPrecondition, client.ErrPortalClosed)
	if ce == nil {
		return
	}
	next, ok := ce.NextOpen()
	if want := time.Date(2026, 12, 9, 8, 0, 0, 0, time.UTC); !ok || !next.Equal(want) {
		t.Errorf("NextOpen = %v, %v; want %v (Wednesday 09:00 Berlin)", next, ok, want)
	}
	if _, ok := (&client.Error{Reason: "SESSION_ENDED"}).NextOpen(); ok {
		t.Error("NextOpen of another error reported a time")
	}
}

// TestErrors_Authentication: a missing token is ErrUnauthenticated, a
// token of another account ErrPermissionDenied; a loopback plaintext
// connection may carry a token.
func TestErrors_Authentication(t *testing.T) {
	t.Parallel()
	g := mustStart(t, true, nil)
	mustFixture(t, g)
	ctx := ctxT(t)
	tok, err := g.admin.CreateCallerToken(ctx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
		Name: "session server", Role: gatehousev1.CallerRole_CALLER_ROLE_DECIDER, AccountId: "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "other", DisplayName: "Other"}}); err != nil {
		t.Fatal(err)
	}
	lgIn := func(acct string) client.StartRequest {
		return client.StartRequest{AccountID: acct, Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeID: "alice", CustomerID: "c"}
	}

	anon := dial(t, g.addr)
	_, err = anon.StartSession(ctx, lgIn("acme"))
	wantErr(t, "StartSession(no token)", err, codes.Unauthenticated, client.ErrUnauthenticated)
	bad := dial(t, g.addr, client.WithBearerToken("gh_k-nobody_secret"))
	_, err = bad.GetSession(ctx, "nope")
	wantErr(t, "GetSession(unknown token)", err, codes.Unauthenticated, client.ErrUnauthenticated)

	c := dial(t, g.addr, client.WithBearerToken(tok.GetBearer()))
	s, err := c.StartSession(ctx, lgIn("acme"))
	if err != nil {
		t.Fatalf("StartSession with a decider token: %v", err)
	}
	if _, err := c.Check(ctx, chatOf(s.GetId())); err != nil {
		t.Fatalf("Check with a decider token: %v", err)
	}
	_, err = c.StartSession(ctx, lgIn("other"))
	wantErr(t, "StartSession(other account)", err, codes.PermissionDenied, client.ErrPermissionDenied)
}

func chatOf(id string) client.CheckRequest {
	return client.CheckRequest{SessionID: id, Actor: client.Actor{Role: gatehousev1.Role_ROLE_CUSTOMER, ID: "c"}, Feature: gatehousev1.Feature_FEATURE_CHAT}
}

// TestErrors_Overloaded: a server at its limit of calls sheds the next one
// with RetryInfo; the client retries it after the delay and, when the
// server stays full, reports ErrOverloaded with the delay.
func TestErrors_Overloaded(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, func(o *server.Options) { o.Limits.MaxInflight = 1 })
	mustFixture(t, g)
	c := dial(t, g.addr, client.WithMaxAttempts(3))
	ctx := ctxT(t)
	s, err := c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeID: "alice", CustomerID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	// One check holds the only slot: it waits for a revision that never
	// comes, until its 2s deadline.
	held := make(chan error, 1)
	holder := dial(t, g.addr, client.WithMaxAttempts(20)) // gets in even if the probes below are in the way
	go func() {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		q := chatOf(s.GetId())
		q.MinRevision = 1 << 60
		_, err := holder.Check(hctx, q)
		held <- err
	}()
	var shed error
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); {
		if _, err := c.GetSession(ctx, s.GetId()); err != nil {
			shed = err
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	ce := wantErr(t, "GetSession(server full)", shed, codes.ResourceExhausted, client.ErrResourceExhausted, client.ErrOverloaded)
	if ce != nil && ce.RetryDelay <= 0 {
		t.Errorf("RetryDelay = %v, want the server's delay", ce.RetryDelay)
	}
	wantErr(t, "Check(holding)", <-held, codes.DeadlineExceeded, context.DeadlineExceeded)
	if _, err := c.GetSession(ctx, s.GetId()); err != nil {
		t.Fatalf("GetSession after the slot was freed: %v", err)
	}
}

// TestErrors_Unavailable: no server is ErrUnavailable.
func TestErrors_Unavailable(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	c := dial(t, addr)
	_, err = c.GetSession(ctxT(t), "s")
	wantErr(t, "GetSession(no server)", err, codes.Unavailable, client.ErrUnavailable)
}
