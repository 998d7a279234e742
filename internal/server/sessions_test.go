package server

import (
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"google.golang.org/grpc/codes"
)

func TestStartSession(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")
	if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "bob", DisplayName: "Bob", LiveGuideEnabled: false}}); err != nil {
		t.Fatal(err)
	}
	lg := gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE
	for _, tc := range []struct {
		name   string
		req    *gatehousev1.StartSessionRequest
		code   codes.Code
		reason string
		fields []string
	}{
		{"rep not enabled for live guide", &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: lg, RepresentativeId: "bob", CustomerId: "c"}, codes.FailedPrecondition, service.ReasonRepNotAllowed, nil},
		{"unknown rep", &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: lg, RepresentativeId: "zed", CustomerId: "c"}, codes.NotFound, "", nil},
		{"rep of another account", &gatehousev1.StartSessionRequest{AccountId: "other", Kind: lg, RepresentativeId: "bob", CustomerId: "c"}, codes.NotFound, "", nil},
		{"unknown account", &gatehousev1.StartSessionRequest{AccountId: "nobody", Kind: lg, RepresentativeId: "alice", CustomerId: "c"}, codes.NotFound, "", nil},
		{"no kind", &gatehousev1.StartSessionRequest{AccountId: "acme", RepresentativeId: "alice", CustomerId: "c"}, codes.InvalidArgument, "", []string{"kind"}},
		{"portal on live guide", &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: lg, RepresentativeId: "alice", CustomerId: "c", PortalId: "p"}, codes.InvalidArgument, "", []string{"portal_id"}},
		{"missing ids", &gatehousev1.StartSessionRequest{Kind: lg}, codes.InvalidArgument, "", []string{"account_id", "representative_id", "customer_id"}},
		{"support at an unknown portal", &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: "alice", CustomerId: "c", PortalId: "p"}, codes.NotFound, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sessions.StartSession(ctx, tc.req)
			if tc.code == codes.InvalidArgument {
				wantInvalid(t, err, tc.fields...)
				return
			}
			st := wantCode(t, err, tc.code)
			if got := errorReason(st); got != tc.reason {
				t.Fatalf("reason = %q, want %q", got, tc.reason)
			}
		})
	}

	s1 := e.MustStartSession("acme")
	s2 := e.MustStartSession("acme")
	if s1.GetId() == s2.GetId() || !service.IsSlug(s1.GetId()) {
		t.Fatalf("session ids %q, %q", s1.GetId(), s2.GetId())
	}
	if s1.GetState() != gatehousev1.SessionState_SESSION_STATE_ACTIVE || s1.GetKind() != lg || s1.GetStartTime() == nil || s1.GetAccountId() != "acme" {
		t.Fatalf("session = %v", s1)
	}

	_, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: s1.GetId(), CustomerRating: 6})
	wantInvalid(t, err, "customer_rating")
	ended, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: s1.GetId(), CustomerRating: 4, RepresentativeRating: 5})
	if err != nil {
		t.Fatal(err)
	}
	es := ended.GetSession()
	if es.GetState() != gatehousev1.SessionState_SESSION_STATE_ENDED || es.GetEndTime() == nil || es.GetCustomerRating() != 4 || es.GetRevision() <= s2.GetRevision() {
		t.Fatalf("ended = %v", es)
	}
	_, err = e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: s1.GetId()})
	st := wantCode(t, err, codes.FailedPrecondition)
	if errorReason(st) != service.ReasonSessionEnded {
		t.Fatalf("reason %q", errorReason(st))
	}
	_, err = e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: "s-unknown"})
	wantCode(t, err, codes.NotFound)
	got, err := e.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: s1.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetSession().GetState() != gatehousev1.SessionState_SESSION_STATE_ENDED {
		t.Fatalf("GetSession = %v", got.GetSession())
	}
}
