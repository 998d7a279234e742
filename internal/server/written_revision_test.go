package server

import (
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
)

// TestWrites_ReturnTheRevisionTheyWrote: every write that returns the
// record it wrote returns the revision and etag a later read reports (the
// commit's revision, which the transaction does not know while it runs),
// never zero nor the revision it read at.
func TestWrites_ReturnTheRevisionTheyWrote(t *testing.T) {
	e := MustStart(t, "")
	ctx := ctxT(t)
	type versioned interface {
		GetEtag() string
		GetRevision() uint64
	}
	check := func(rpc string, got versioned, read func() (versioned, error)) {
		t.Helper()
		if got.GetRevision() == 0 || got.GetEtag() == "" {
			t.Errorf("%s returned revision %d, etag %q", rpc, got.GetRevision(), got.GetEtag())
			return
		}
		want, err := read()
		if err != nil {
			t.Fatalf("read after %s: %v", rpc, err)
		}
		if got.GetRevision() != want.GetRevision() || got.GetEtag() != want.GetEtag() {
			t.Errorf("%s returned revision %d etag %q; a read reports %d %q", rpc, got.GetRevision(), got.GetEtag(), want.GetRevision(), want.GetEtag())
		}
	}
	account := func() (versioned, error) {
		r, err := e.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "acme"})
		return r.GetAccount(), err
	}
	portal := func() (versioned, error) {
		r, err := e.admin.GetPortal(ctx, &gatehousev1.GetPortalRequest{AccountId: "acme", Id: "top"})
		return r.GetPortal(), err
	}

	ca, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}})
	if err != nil {
		t.Fatal(err)
	}
	check("CreateAccount", ca.GetAccount(), account)
	ua, err := e.admin.UpdateAccount(ctx, &gatehousev1.UpdateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme 2"}, UpdateMask: mask("display_name")})
	if err != nil {
		t.Fatal(err)
	}
	check("UpdateAccount", ua.GetAccount(), account)

	cp, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "top", Name: "Top", Functions: allOn()}})
	if err != nil {
		t.Fatal(err)
	}
	check("CreatePortal", cp.GetPortal(), portal)
	up, err := e.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "top", Name: "Top 2"}, UpdateMask: mask("name")})
	if err != nil {
		t.Fatal(err)
	}
	check("UpdatePortal", up.GetPortal(), portal)

	if _, err := e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Id: "team", Name: "Team", PortalId: "top"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", TeamId: "team", LiveGuideEnabled: true, Functions: allOn()}}); err != nil {
		t.Fatal(err)
	}
	ss, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
		RepresentativeId: "alice", CustomerId: "cust", PortalId: "top-default"})
	if err != nil {
		t.Fatal(err)
	}
	id := ss.GetSession().GetId()
	session := func() (versioned, error) {
		r, err := e.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: id})
		return r.GetSession(), err
	}
	check("StartSession", ss.GetSession(), session)
	inv, err := e.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: id, SpecialistId: "spec", DisplayName: "Spec"})
	if err != nil {
		t.Fatal(err)
	}
	check("InviteExternalSpecialist", inv.GetSession(), session)
	rm, err := e.sessions.RemoveExternalSpecialist(ctx, &gatehousev1.RemoveExternalSpecialistRequest{SessionId: id, SpecialistId: "spec"})
	if err != nil {
		t.Fatal(err)
	}
	check("RemoveExternalSpecialist", rm.GetSession(), session)
	end, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: id})
	if err != nil {
		t.Fatal(err)
	}
	check("EndSession", end.GetSession(), session)
}
