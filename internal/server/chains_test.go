package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// wantChainTooDeep fails unless err is the chain-depth refusal:
// FAILED_PRECONDITION, reason CHAIN_TOO_DEEP, "chain deeper than 64".
func wantChainTooDeep(t *testing.T, err error, what string) {
	t.Helper()
	st, _ := status.FromError(err)
	want := fmt.Sprintf("chain deeper than %d", policy.MaxChainDepth)
	if st.Code() != codes.FailedPrecondition || errorReason(st) != reasonChainTooDeep || !strings.Contains(st.Message(), want) {
		t.Fatalf("%s: got %v %q (reason %q), want FAILED_PRECONDITION %s %q", what, st.Code(), st.Message(), errorReason(st), reasonChainTooDeep, want)
	}
}

// chainCtx is a context for the chain tests, which make a few hundred
// writes, each with its fsync: generous, for a loaded machine under -race.
func chainCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func allFunctionsProto() *gatehousev1.SupportFunctions {
	return functionsToProto(service.AllFunctions)
}

// buildPortalChain creates portals prefix1 (top) … prefixN, each under the
// one before.
func buildPortalChain(t *testing.T, e *testEnv, acct, prefix string, n int) {
	t.Helper()
	ctx := chainCtx(t)
	for i := 1; i <= n; i++ {
		p := &gatehousev1.Portal{Id: fmt.Sprintf("%s%d", prefix, i), Name: "P", Functions: allFunctionsProto()}
		if i > 1 {
			p.ParentId = fmt.Sprintf("%s%d", prefix, i-1)
		}
		if _, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: acct, Portal: p}); err != nil {
			t.Fatalf("CreatePortal(%s) at depth %d: %v", p.Id, i, err)
		}
	}
}

// buildTeamChain creates teams prefix1 … prefixN, each under the one
// before; the first serves portal (the others inherit it).
func buildTeamChain(t *testing.T, e *testEnv, acct, prefix, portal string, n int) {
	t.Helper()
	ctx := chainCtx(t)
	for i := 1; i <= n; i++ {
		tm := &gatehousev1.Team{Id: fmt.Sprintf("%s%d", prefix, i), Name: "T"}
		if i == 1 {
			tm.PortalId = portal
		} else {
			tm.ParentId = fmt.Sprintf("%s%d", prefix, i-1)
		}
		if _, err := e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: acct, Team: tm}); err != nil {
			t.Fatalf("CreateTeam(%s) at depth %d: %v", tm.Id, i, err)
		}
	}
}

// TestChainDepth_CreateAndStart builds a portal chain and a team chain of
// exactly policy.MaxChainDepth, starts a support session at the deepest
// portal for a representative of the deepest team and decides in it; one
// more portal or team is refused (FAILED_PRECONDITION, "chain deeper than
// 64"), as often as it is asked.
func TestChainDepth_CreateAndStart(t *testing.T) {
	m := NewMetrics()
	e := MustStart(t, "", func(o *Options) { o.Metrics = m })
	ctx := chainCtx(t)
	e.MustCreateAccount("acme")
	const max = policy.MaxChainDepth
	buildPortalChain(t, e, "acme", "p", max)
	buildTeamChain(t, e, "acme", "t", "p1", max)
	for range 3 {
		_, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme",
			Portal: &gatehousev1.Portal{Id: fmt.Sprintf("p%d", max+1), ParentId: fmt.Sprintf("p%d", max), Name: "P"}})
		wantChainTooDeep(t, err, "portal 65")
		_, err = e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme",
			Team: &gatehousev1.Team{Id: fmt.Sprintf("t%d", max+1), ParentId: fmt.Sprintf("t%d", max), Name: "T"}})
		wantChainTooDeep(t, err, "team 65")
	}
	if got := metricValue(t, m, "gatehouse_limit_refusals_total", "limit=chain_depth"); got != 6 {
		t.Fatalf("gatehouse_limit_refusals_total{limit=chain_depth} = %v, want 6", got)
	}
	if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "deep", DisplayName: "Deep", TeamId: fmt.Sprintf("t%d", max), Functions: allFunctionsProto()}}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
		RepresentativeId: "deep", CustomerId: "c", PortalId: fmt.Sprintf("p%d", max)})
	if err != nil {
		t.Fatalf("StartSession at the deepest allowed portal and team: %v", err)
	}
	d := e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: resp.GetSession().GetId(), Actor: agent("deep"), Feature: gatehousev1.Feature_FEATURE_SEND_FILES})
	if !d.GetDecision().GetAllowed() {
		t.Fatalf("SEND_FILES at the deepest portal: %v", d.GetDecision())
	}
	// A function switched off at the top still decides at depth 64.
	if _, err := e.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme",
		Portal: &gatehousev1.Portal{Id: "p1", Functions: &gatehousev1.SupportFunctions{}}, UpdateMask: mask("functions.send_files")}); err != nil {
		t.Fatal(err)
	}
	d = e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: resp.GetSession().GetId(), Actor: agent("deep"), Feature: gatehousev1.Feature_FEATURE_SEND_FILES})
	if d.GetDecision().GetAllowed() || d.GetDecision().GetRule() != "p1" {
		t.Fatalf("SEND_FILES off at p1, asked at depth %d: %v", max, d.GetDecision())
	}
}

// TestChainDepth_Reparent moves portals and teams, each with a chain
// below it, under deep chains: a move that keeps every chain within the
// limit is accepted, one that would make any chain below the moved record
// deeper is refused, and nothing is changed by a refused move.
func TestChainDepth_Reparent(t *testing.T) {
	e := MustStart(t, "")
	ctx := chainCtx(t)
	e.MustCreateAccount("acme")
	const max = policy.MaxChainDepth
	buildPortalChain(t, e, "acme", "p", max-4) // p1 … p60
	buildPortalChain(t, e, "acme", "x", 10)    // x1 … x10; x2's subtree is 9 deep
	buildTeamChain(t, e, "acme", "t", "p1", max-4)
	buildTeamChain(t, e, "acme", "u", "x1", 10)

	movePortal := func(id, parent string) error {
		_, err := e.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme",
			Portal: &gatehousev1.Portal{Id: id, ParentId: parent}, UpdateMask: mask("parent_id")})
		return err
	}
	moveTeam := func(id, parent string) error {
		_, err := e.admin.UpdateTeam(ctx, &gatehousev1.UpdateTeamRequest{AccountId: "acme",
			Team: &gatehousev1.Team{Id: id, ParentId: parent}, UpdateMask: mask("parent_id")})
		return err
	}
	// x2 … x10 is 9 portals: under p56 the deepest would be 65.
	wantChainTooDeep(t, movePortal("x2", "p56"), "x2 under p56")
	wantChainTooDeep(t, movePortal("x2", "p60"), "x2 under p60")
	// x9, x10 under p60 end at 62: accepted, then moved back.
	if err := movePortal("x9", "p60"); err != nil {
		t.Fatalf("x9 under p60 (deepest 62): %v", err)
	}
	if err := movePortal("x9", "x8"); err != nil {
		t.Fatal(err)
	}
	if got, err := e.admin.GetPortal(ctx, &gatehousev1.GetPortalRequest{AccountId: "acme", Id: "x2"}); err != nil || got.GetPortal().GetParentId() != "x1" {
		t.Fatalf("x2 after refused moves: %v, %v", got.GetPortal(), err)
	}
	// A leaf can still be moved to depth 64 exactly, the whole x2 chain
	// under p55 ends at depth 64 too.
	if err := movePortal("x10", "p59"); err != nil {
		t.Fatalf("x10 under p59 (depth 60): %v", err)
	}
	if err := movePortal("x10", "x9"); err != nil {
		t.Fatal(err)
	}
	if err := movePortal("x2", "p55"); err != nil {
		t.Fatalf("x2 under p55 (deepest 64): %v", err)
	}
	wantInvalid(t, movePortal("x5", "x10"), "portal.parent_id") // a cycle stays a cycle
	// The x chain is now deep: nothing more fits under x10.
	_, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme",
		Portal: &gatehousev1.Portal{Id: "x11", ParentId: "x10", Name: "P"}})
	wantChainTooDeep(t, err, "x11 under x10 at 64")

	// Teams: the same rules.
	wantChainTooDeep(t, moveTeam("u2", "t56"), "u2 under t56")
	if err := moveTeam("u2", "t55"); err != nil {
		t.Fatalf("u2 under t55 (deepest 64): %v", err)
	}
	wantInvalid(t, moveTeam("u10", "u10"), "team.parent_id")
	// The deepest team and portal still start sessions.
	if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "deep", DisplayName: "Deep", TeamId: "u10", Functions: allFunctionsProto()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
		RepresentativeId: "deep", CustomerId: "c", PortalId: "x10"}); err != nil {
		t.Fatalf("StartSession at x10 (depth 64) for a rep of u10 (depth 64): %v", err)
	}
}

// TestChainDepth_StoredDeeperChain: chains longer than the limit written
// straight into the store (as an older version could) make StartSession
// FAILED_PRECONDITION with the limit's message, never INTERNAL, and the
// snapshot fails closed on them.
func TestChainDepth_StoredDeeperChain(t *testing.T) {
	e := MustStart(t, "")
	ctx := chainCtx(t)
	e.MustCreateAccount("acme")
	const n = policy.MaxChainDepth + 3
	if _, err := e.store.Update(ctx, func(tx store.Tx) error {
		for i := 1; i <= n; i++ {
			p := policy.Portal{ID: fmt.Sprintf("p%d", i), Name: "P", Functions: service.AllFunctions}
			tm := policy.Team{ID: fmt.Sprintf("t%d", i), Name: "T"}
			if i > 1 {
				p.ParentID = fmt.Sprintf("p%d", i-1)
				tm.ParentID = fmt.Sprintf("t%d", i-1)
			} else {
				tm.PortalID = "p1"
			}
			if err := store.PutPortal(tx, "acme", &p); err != nil {
				return err
			}
			if err := store.PutTeam(tx, "acme", &tm); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e = e.Restart()
	ctx = chainCtx(t)
	for _, c := range []struct{ team, portal string }{{"t2", fmt.Sprintf("p%d", n)}, {fmt.Sprintf("t%d", n), "p2"}} {
		if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
			Representative: &gatehousev1.Representative{Id: "r-" + c.team, DisplayName: "R", TeamId: c.team, Functions: allFunctionsProto()}}); err != nil {
			t.Fatal(err)
		}
		_, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
			RepresentativeId: "r-" + c.team, CustomerId: "c", PortalId: c.portal})
		wantChainTooDeep(t, err, "StartSession on "+c.team+"/"+c.portal)
	}
	_, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme",
		Portal: &gatehousev1.Portal{Id: "more", ParentId: fmt.Sprintf("p%d", n), Name: "P"}})
	wantChainTooDeep(t, err, "CreatePortal under a stored deep chain")
	// A write that keeps the parent is not refused for the chain.
	if _, err := e.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme",
		Portal: &gatehousev1.Portal{Id: fmt.Sprintf("p%d", n), Name: "renamed"}, UpdateMask: mask("name")}); err != nil {
		t.Fatalf("renaming the deepest portal: %v", err)
	}
	if _, err := e.admin.UpdateTeam(ctx, &gatehousev1.UpdateTeamRequest{AccountId: "acme",
		Team: &gatehousev1.Team{Id: fmt.Sprintf("t%d", n), Name: "renamed"}, UpdateMask: mask("name")}); err != nil {
		t.Fatalf("renaming the deepest team: %v", err)
	}
	// Shortening the chain (moving the deep part up) is allowed.
	if _, err := e.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme",
		Portal: &gatehousev1.Portal{Id: "p10", ParentId: "p1"}, UpdateMask: mask("parent_id")}); err != nil {
		t.Fatalf("moving p10 … p%d up under p1: %v", n, err)
	}
}
