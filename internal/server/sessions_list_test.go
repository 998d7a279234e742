package server

import (
	"slices"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestListSessions_FiltersAndPages(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")
	if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "bob", DisplayName: "Bob", LiveGuideEnabled: true}}); err != nil {
		t.Fatal(err)
	}
	start := func(rep, cust string) string {
		t.Helper()
		r, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme",
			Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: rep, CustomerId: cust})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetSession().GetId()
	}
	s1 := start("alice", "c1")
	s2 := start("alice", "c2")
	s3 := start("bob", "c1")
	e.MustStartSession("other")
	if _, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: s2}); err != nil {
		t.Fatal(err)
	}
	list := func(req *gatehousev1.ListSessionsRequest) []string {
		t.Helper()
		req.AccountId = "acme"
		var ids []string
		for {
			resp, err := e.sessions.ListSessions(ctx, req)
			if err != nil {
				t.Fatalf("ListSessions(%v): %v", req, err)
			}
			for _, s := range resp.GetSessions() {
				if s.GetAccountId() != "acme" {
					t.Fatalf("session of account %s", s.GetAccountId())
				}
				ids = append(ids, s.GetId())
			}
			if resp.GetNextPageToken() == "" {
				return ids
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	for name, tc := range map[string]struct {
		req  *gatehousev1.ListSessionsRequest
		want []string
	}{
		"all":              {&gatehousev1.ListSessionsRequest{}, sorted(s1, s2, s3)},
		"one per page":     {&gatehousev1.ListSessionsRequest{PageSize: 1}, sorted(s1, s2, s3)},
		"active":           {&gatehousev1.ListSessionsRequest{State: gatehousev1.SessionState_SESSION_STATE_ACTIVE}, sorted(s1, s3)},
		"ended":            {&gatehousev1.ListSessionsRequest{State: gatehousev1.SessionState_SESSION_STATE_ENDED}, []string{s2}},
		"representative":   {&gatehousev1.ListSessionsRequest{RepresentativeId: "alice"}, sorted(s1, s2)},
		"customer, paged":  {&gatehousev1.ListSessionsRequest{CustomerId: "c1", PageSize: 1}, sorted(s1, s3)},
		"support kind":     {&gatehousev1.ListSessionsRequest{Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT}, nil},
		"started later":    {&gatehousev1.ListSessionsRequest{StartedAfter: timestamppb.New(time.Now().Add(time.Hour))}, nil},
		"started before":   {&gatehousev1.ListSessionsRequest{StartedBefore: timestamppb.New(time.Now().Add(time.Hour))}, sorted(s1, s2, s3)},
		"started too soon": {&gatehousev1.ListSessionsRequest{StartedBefore: timestamppb.New(time.Now().Add(-time.Hour))}, nil},
	} {
		if got := list(tc.req); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
	_, err := e.sessions.ListSessions(ctx, &gatehousev1.ListSessionsRequest{})
	wantInvalid(t, err, "account_id")
	// An undeclared enum number is refused by the codec before the handler
	// looks at any other field (TestUndeclaredEnumValuesAreInvalid).
	_, err = e.sessions.ListSessions(ctx, &gatehousev1.ListSessionsRequest{AccountId: "acme", State: 7, PageToken: "x"})
	wantInvalid(t, err, "state")
	_, err = e.sessions.ListSessions(ctx, &gatehousev1.ListSessionsRequest{AccountId: "acme", PageToken: "x"})
	wantInvalid(t, err, "page_token")
	_, err = e.sessions.ListSessions(ctx, &gatehousev1.ListSessionsRequest{AccountId: "nope"})
	wantCode(t, err, codes.NotFound)
}
