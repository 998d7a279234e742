package client_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/protobuf/proto"
)

func dial(t testing.TB, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Dial(addr, append([]client.Option{client.WithInsecure()}, opts...)...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var (
	agent    = client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "alice"}
	customer = client.Actor{Role: gatehousev1.Role_ROLE_CUSTOMER, ID: "cust-1"}
)

// TestCalls_EveryWrapper runs each call against a real server and compares
// the decisions with the generated client's answers.
func TestCalls_EveryWrapper(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, nil)
	mustFixture(t, g)
	c := dial(t, g.addr)
	ctx := ctxT(t)

	lg, err := c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE,
		RepresentativeID: "alice", CustomerID: "cust-1"})
	if err != nil {
		t.Fatalf("StartSession: %v", err)
	}
	if lg.GetId() == "" || lg.GetState() != gatehousev1.SessionState_SESSION_STATE_ACTIVE || lg.GetRepresentativeId() != "alice" {
		t.Fatalf("StartSession = %v", lg)
	}
	got, err := c.GetSession(ctx, lg.GetId())
	if err != nil || !proto.Equal(got, lg) {
		t.Fatalf("GetSession = %v, %v; want %v", got, err, lg)
	}

	checks := []client.CheckRequest{
		{SessionID: lg.GetId(), Actor: agent, Feature: gatehousev1.Feature_FEATURE_NAVIGATE, URL: "https://example.com/"},
		{SessionID: lg.GetId(), Actor: customer, Feature: gatehousev1.Feature_FEATURE_CHAT},
		{SessionID: lg.GetId(), Actor: agent, Feature: gatehousev1.Feature_FEATURE_CUSTOMER_SCREEN_SHARING},
	}
	var single []client.Decision
	for _, q := range checks {
		d, err := c.Check(ctx, q)
		if err != nil {
			t.Fatalf("Check(%v): %v", q.Feature, err)
		}
		raw, err := g.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: q.SessionID,
			Actor: &gatehousev1.Actor{Role: q.Actor.Role, Id: q.Actor.ID}, Feature: q.Feature, Url: q.URL})
		if err != nil {
			t.Fatal(err)
		}
		want := client.Decision{Allowed: raw.GetDecision().GetAllowed(), Reason: raw.GetDecision().GetReason(),
			Message: raw.GetDecision().GetMessage(), Rule: raw.GetDecision().GetRule(), Revision: raw.GetRevision()}
		if d != want {
			t.Errorf("Check(%v) = %+v, want %+v", q.Feature, d, want)
		}
		if d.Revision == 0 || d.Reason == gatehousev1.Reason_REASON_UNSPECIFIED {
			t.Errorf("Check(%v) = %+v: no revision or reason", q.Feature, d)
		}
		single = append(single, d)
	}
	// A support feature in a Live Guide session is denied: an answer, not
	// an error.
	if single[2].Allowed {
		t.Errorf("screen sharing allowed in a Live Guide session: %+v", single[2])
	}
	many, err := c.CheckMany(ctx, checks)
	if err != nil {
		t.Fatalf("CheckMany: %v", err)
	}
	if len(many) != len(checks) {
		t.Fatalf("CheckMany: %d decisions for %d checks", len(many), len(checks))
	}
	for i := range many {
		if many[i] != single[i] {
			t.Errorf("CheckMany[%d] = %+v, Check = %+v", i, many[i], single[i])
		}
	}

	pol, err := c.GetSessionPolicy(ctx, client.PolicyRequest{SessionID: lg.GetId(), Actor: customer, Language: "fr-CA"})
	if err != nil {
		t.Fatalf("GetSessionPolicy: %v", err)
	}
	if pol.GetSession().GetId() != lg.GetId() || pol.GetLanguage() != "fr" || pol.GetRevision() == 0 {
		t.Errorf("GetSessionPolicy: session %q language %q revision %d", pol.GetSession().GetId(), pol.GetLanguage(), pol.GetRevision())
	}

	sup, err := c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
		RepresentativeID: "bob", CustomerID: "cust-2", PortalID: "corp-eu"})
	if err != nil {
		t.Fatalf("StartSession(support): %v", err)
	}
	inv, err := c.InviteSpecialist(ctx, sup.GetId(), "spec-1", "Specialist One")
	if err != nil {
		t.Fatalf("InviteSpecialist: %v", err)
	}
	if len(inv.GetSpecialists()) != 1 || inv.GetSpecialists()[0].GetDisplayName() != "Specialist One" {
		t.Fatalf("InviteSpecialist: specialists %v", inv.GetSpecialists())
	}
	rem, err := c.RemoveSpecialist(ctx, sup.GetId(), "spec-1")
	if err != nil || len(rem.GetSpecialists()) != 0 {
		t.Fatalf("RemoveSpecialist = %v, %v", rem.GetSpecialists(), err)
	}

	ended, err := c.EndSession(ctx, lg.GetId(), client.Ratings{Customer: 5, Representative: 4})
	if err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	if ended.GetState() != gatehousev1.SessionState_SESSION_STATE_ENDED || ended.GetCustomerRating() != 5 || ended.GetRepresentativeRating() != 4 {
		t.Fatalf("EndSession = %v", ended)
	}
	d, err := c.Check(ctx, checks[1])
	if err != nil || d.Allowed || d.Reason != gatehousev1.Reason_REASON_SESSION_ENDED {
		t.Fatalf("Check after EndSession = %+v, %v; want denied SESSION_ENDED", d, err)
	}
}
