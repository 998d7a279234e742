package server

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"google.golang.org/grpc/codes"
)

// allOn has every support function on.
func allOn() *gatehousev1.SupportFunctions {
	return functionsToProto(service.AllFunctions)
}

// supportFixture builds account acme with top portal "corp" (default
// subportal "corp-default") and subportal "corp-eu", team "support"
// assigned to corp with subteam "tier2" (inherits), and representatives
// alice (tier2) and bob (support), all functions on everywhere.
func supportFixture(t *testing.T, e *testEnv) {
	t.Helper()
	ctx := ctxT(t)
	if _, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}); err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp", Name: "Corp", Functions: allOn()}}))
	must(e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp-eu", ParentId: "corp", Name: "EU", Functions: allOn()}}))
	must(e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Id: "support", Name: "Support", PortalId: "corp"}}))
	must(e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Id: "tier2", ParentId: "support", Name: "Tier 2"}}))
	for _, r := range []struct{ id, team string }{{"alice", "tier2"}, {"bob", "support"}} {
		must(e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
			Representative: &gatehousev1.Representative{Id: r.id, DisplayName: r.id, TeamId: r.team, Functions: allOn()}}))
	}
}

func (e *testEnv) MustStartSupport(rep, portal string) *gatehousev1.Session {
	e.t.Helper()
	resp, err := e.sessions.StartSession(ctxT(e.t), &gatehousev1.StartSessionRequest{AccountId: "acme",
		Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: rep, CustomerId: "cust-" + rep, PortalId: portal})
	if err != nil {
		e.t.Fatalf("StartSession(%s at %s): %v", rep, portal, err)
	}
	return resp.GetSession()
}

func TestPortals_DefaultSubportalAndDeletes(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	supportFixture(t, e)
	def, err := e.admin.GetPortal(ctx, &gatehousev1.GetPortalRequest{AccountId: "acme", Id: "corp-default"})
	if err != nil {
		t.Fatalf("default subportal: %v", err)
	}
	if def.GetPortal().GetParentId() != "corp" || !def.GetPortal().GetFunctions().GetSendFiles() {
		t.Fatalf("default subportal = %v", def.GetPortal())
	}
	// corp-eu can go (corp keeps corp-default), then corp-default cannot.
	if _, err := e.admin.DeletePortal(ctx, &gatehousev1.DeletePortalRequest{AccountId: "acme", Id: "corp-eu"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.DeletePortal(ctx, &gatehousev1.DeletePortalRequest{AccountId: "acme", Id: "corp-default"})
	wantCode(t, err, codes.FailedPrecondition)
	// Moving the last subportal away is refused the same way.
	if _, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "other", Name: "Other"}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp-default", ParentId: "other"}, UpdateMask: mask("parent_id")})
	wantCode(t, err, codes.FailedPrecondition)
	// A portal a team uses cannot be deleted, and the error names the team.
	_, err = e.admin.DeletePortal(ctx, &gatehousev1.DeletePortalRequest{AccountId: "acme", Id: "corp"})
	st := wantCode(t, err, codes.FailedPrecondition)
	if errorReason(st) != service.ReasonInUse {
		t.Fatalf("reason %q (%v)", errorReason(st), err)
	}
	// Cycles are refused.
	_, err = e.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp", ParentId: "corp-default"}, UpdateMask: mask("parent_id")})
	wantInvalid(t, err, "portal.parent_id")
	_, err = e.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp", ParentId: "corp"}, UpdateMask: mask("parent_id")})
	wantInvalid(t, err, "portal.parent_id")
	_, err = e.admin.UpdateTeam(ctx, &gatehousev1.UpdateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Id: "support", ParentId: "tier2"}, UpdateMask: mask("parent_id")})
	wantInvalid(t, err, "team.parent_id")
	// References are checked.
	_, err = e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Name: "x", PortalId: "nope", ParentId: "nope"}})
	wantInvalid(t, err, "team.portal_id", "team.parent_id")
	_, err = e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Name: "x", NotificationEmail: "Bob <bob@example.com>", BusinessHoursId: "nope"}})
	wantInvalid(t, err, "portal.notification_email", "portal.business_hours_id")
	// A team with representatives or subteams cannot be deleted.
	_, err = e.admin.DeleteTeam(ctx, &gatehousev1.DeleteTeamRequest{AccountId: "acme", Id: "support"})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = e.admin.DeleteTeam(ctx, &gatehousev1.DeleteTeamRequest{AccountId: "acme", Id: "tier2"})
	wantCode(t, err, codes.FailedPrecondition)
	// An unused top portal goes together with its default subportal.
	if _, err := e.admin.DeletePortal(ctx, &gatehousev1.DeletePortalRequest{AccountId: "acme", Id: "other"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.GetPortal(ctx, &gatehousev1.GetPortalRequest{AccountId: "acme", Id: "other-default"})
	wantCode(t, err, codes.NotFound)
}

func TestSupport_StartSession(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	supportFixture(t, e)
	if _, err := e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Id: "loners", Name: "No portal"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "carol", DisplayName: "Carol", TeamId: "loners"}}); err != nil {
		t.Fatal(err)
	}
	// alice's team chain (tier2 -> support -> corp) covers every subportal of corp.
	s := e.MustStartSupport("alice", "corp-eu")
	if s.GetPortalId() != "corp-eu" || s.GetKind() != gatehousev1.SessionKind_SESSION_KIND_SUPPORT {
		t.Fatalf("session = %v", s)
	}
	for _, tc := range []struct {
		name, rep, portal string
		code              codes.Code
		reason            string
	}{
		{"rep without a portal", "carol", "corp-eu", codes.FailedPrecondition, service.ReasonRepNotAllowed},
		{"top portal", "alice", "corp", codes.FailedPrecondition, service.ReasonNotSubportal},
		{"unknown portal", "alice", "nope", codes.NotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme",
				Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: tc.rep, CustomerId: "c", PortalId: tc.portal})
			st := wantCode(t, err, tc.code)
			if errorReason(st) != tc.reason {
				t.Fatalf("reason %q, want %q", errorReason(st), tc.reason)
			}
		})
	}
	_, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme",
		Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: "alice", CustomerId: "c"})
	wantInvalid(t, err, "portal_id")
}

// TestSupport_FunctionsNeedPortalAndRepresentative demonstrates the rule
// "functions must be enabled on both a per-portal and per-representative
// basis".
func TestSupport_FunctionsNeedPortalAndRepresentative(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	supportFixture(t, e)
	s := e.MustStartSupport("alice", "corp-eu")
	send := func(actor *gatehousev1.Actor) *gatehousev1.Decision {
		t.Helper()
		return e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: s.GetId(), Actor: actor, Feature: gatehousev1.Feature_FEATURE_SEND_FILES}).GetDecision()
	}
	if d := send(agent("alice")); !d.GetAllowed() {
		t.Fatalf("all on: %v", d)
	}
	// Off for the representative only.
	if _, err := e.admin.UpdateRepresentative(ctx, &gatehousev1.UpdateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "alice", Functions: &gatehousev1.SupportFunctions{}}, UpdateMask: mask("functions.send_files")}); err != nil {
		t.Fatal(err)
	}
	if d := send(agent("alice")); d.GetReason() != gatehousev1.Reason_REASON_REPRESENTATIVE_FUNCTION_DISABLED || d.GetRule() != "alice" {
		t.Fatalf("rep off: %v", d)
	}
	// The customer asking gets the representative's answer.
	if d := send(customer("cust-alice")); d.GetReason() != gatehousev1.Reason_REASON_REPRESENTATIVE_FUNCTION_DISABLED {
		t.Fatalf("customer asking: %v", d)
	}
	// On for the representative, off for the subportal.
	if _, err := e.admin.UpdateRepresentative(ctx, &gatehousev1.UpdateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "alice", Functions: &gatehousev1.SupportFunctions{SendFiles: true}}, UpdateMask: mask("functions.send_files")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme",
		Portal: &gatehousev1.Portal{Id: "corp-eu", Functions: &gatehousev1.SupportFunctions{}}, UpdateMask: mask("functions.send_files")}); err != nil {
		t.Fatal(err)
	}
	if d := send(agent("alice")); d.GetReason() != gatehousev1.Reason_REASON_PORTAL_FUNCTION_DISABLED || d.GetRule() != "corp-eu" {
		t.Fatalf("subportal off: %v", d)
	}
	// Other functions are untouched, and co-browse features do not exist here.
	if d := e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: s.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_ANNOTATIONS}).GetDecision(); !d.GetAllowed() {
		t.Fatalf("annotations: %v", d)
	}
	if d := e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: s.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/"}).GetDecision(); d.GetReason() != gatehousev1.Reason_REASON_FEATURE_NOT_IN_SESSION_KIND {
		t.Fatalf("click in support: %v", d)
	}
	p, err := e.decide.GetSessionPolicy(ctx, &gatehousev1.GetSessionPolicyRequest{SessionId: s.GetId(), Actor: agent("alice")})
	if err != nil {
		t.Fatal(err)
	}
	if f := p.GetPolicy().GetFunctions(); f.GetSendFiles() || !f.GetAnnotations() {
		t.Fatalf("policy functions = %v", f)
	}
}

// TestSupport_TopPortalSwitchReachesEveryone demonstrates "disabling
// settings on a per-portal basis will also disable those settings for all
// representatives assigned to those portals": one write to the top portal,
// no write to any representative, and the very next check in every session
// is denied.
func TestSupport_TopPortalSwitchReachesEveryone(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	supportFixture(t, e)
	sessions := []*gatehousev1.Session{
		e.MustStartSupport("alice", "corp-eu"), e.MustStartSupport("bob", "corp-eu"),
		e.MustStartSupport("alice", "corp-default"), e.MustStartSupport("bob", "corp-default"),
	}
	reps, err := e.admin.ListRepresentatives(ctx, &gatehousev1.ListRepresentativesRequest{AccountId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme",
		Portal: &gatehousev1.Portal{Id: "corp", Functions: &gatehousev1.SupportFunctions{}}, UpdateMask: mask("functions.rep_screen_sharing")}); err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		d := e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: s.GetId(), Actor: agent(s.GetRepresentativeId()), Feature: gatehousev1.Feature_FEATURE_REP_SCREEN_SHARING}).GetDecision()
		if d.GetReason() != gatehousev1.Reason_REASON_PORTAL_FUNCTION_DISABLED || d.GetRule() != "corp" {
			t.Errorf("session %s of %s: %v", s.GetId(), s.GetRepresentativeId(), d)
		}
	}
	after, err := e.admin.ListRepresentatives(ctx, &gatehousev1.ListRepresentativesRequest{AccountId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range after.GetRepresentatives() {
		if r.GetRevision() != reps.GetRepresentatives()[i].GetRevision() || !r.GetFunctions().GetRepScreenSharing() {
			t.Errorf("representative %s was rewritten: %v", r.GetId(), r)
		}
	}
}

// TestSupport_AtMostFiveSpecialists demonstrates "up to 5 external users",
// also under concurrent invites.
func TestSupport_AtMostFiveSpecialists(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	supportFixture(t, e)
	s := e.MustStartSupport("alice", "corp-eu")
	var ok, exhausted atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: s.GetId(), SpecialistId: fmt.Sprintf("spec-%d", i), DisplayName: "Specialist"})
			switch code := wantCodeOrOK(err); code {
			case codes.OK:
				ok.Add(1)
			case codes.ResourceExhausted:
				exhausted.Add(1)
			default:
				t.Errorf("invite %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != service.MaxSpecialists || exhausted.Load() != 20-service.MaxSpecialists {
		t.Fatalf("%d invites succeeded, %d exhausted", ok.Load(), exhausted.Load())
	}
	got, err := e.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: s.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	spec := got.GetSession().GetSpecialistIds()
	if len(spec) != service.MaxSpecialists {
		t.Fatalf("specialists = %v", spec)
	}
	// Specialists are session actors, decided as agents.
	d := e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: s.GetId(), Actor: &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST, Id: spec[0]}, Feature: gatehousev1.Feature_FEATURE_ANNOTATIONS})
	if !d.GetDecision().GetAllowed() {
		t.Fatalf("specialist check: %v", d)
	}
	if _, err := e.sessions.RemoveExternalSpecialist(ctx, &gatehousev1.RemoveExternalSpecialistRequest{SessionId: s.GetId(), SpecialistId: spec[0]}); err != nil {
		t.Fatal(err)
	}
	d = e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: s.GetId(), Actor: &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST, Id: spec[0]}, Feature: gatehousev1.Feature_FEATURE_ANNOTATIONS})
	if d.GetDecision().GetReason() != gatehousev1.Reason_REASON_ACTOR_NOT_IN_SESSION {
		t.Fatalf("removed specialist: %v", d)
	}
	_, err = e.sessions.RemoveExternalSpecialist(ctx, &gatehousev1.RemoveExternalSpecialistRequest{SessionId: s.GetId(), SpecialistId: spec[0]})
	wantCode(t, err, codes.NotFound)
	if _, err := e.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: s.GetId(), SpecialistId: "late", DisplayName: "Late"}); err != nil {
		t.Fatalf("a freed place: %v", err)
	}

	// Inviting needs INVITE_EXTERNAL_SPECIALIST effective for the representative.
	s2 := e.MustStartSupport("bob", "corp-eu")
	if _, err := e.admin.UpdateRepresentative(ctx, &gatehousev1.UpdateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "bob", Functions: &gatehousev1.SupportFunctions{}}, UpdateMask: mask("functions.invite_external_specialist")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: s2.GetId(), SpecialistId: "x", DisplayName: "X"})
	wantCode(t, err, codes.FailedPrecondition)
	// Live Guide sessions have no specialists.
	lg := e.MustStartSessionLiveGuide("alice")
	_, err = e.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: lg.GetId(), SpecialistId: "x", DisplayName: "X"})
	wantCode(t, err, codes.FailedPrecondition)
}

func (e *testEnv) MustStartSessionLiveGuide(rep string) *gatehousev1.Session {
	e.t.Helper()
	if _, err := e.admin.UpdateRepresentative(ctxT(e.t), &gatehousev1.UpdateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: rep, LiveGuideEnabled: true}, UpdateMask: mask("live_guide_enabled")}); err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.sessions.StartSession(ctxT(e.t), &gatehousev1.StartSessionRequest{AccountId: "acme",
		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: rep, CustomerId: "c"})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetSession()
}

func wantCodeOrOK(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	return statusCode(err)
}

// TestSupport_BusinessHours: a closed portal refuses new sessions with the
// next opening time; the clock is injected.
func TestSupport_BusinessHours(t *testing.T) {
	t.Parallel()
	var now atomic.Pointer[time.Time]
	set := func(s string) {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		now.Store(&tm)
	}
	set("2026-12-07T08:00:00Z") // Monday 09:00 in Berlin
	e := MustStart(t, "", func(o *Options) { o.Now = func() time.Time { return *now.Load() } })
	ctx := ctxT(t)
	supportFixture(t, e)
	bh, err := e.admin.CreateBusinessHours(ctx, &gatehousev1.CreateBusinessHoursRequest{AccountId: "acme", BusinessHours: &gatehousev1.BusinessHours{
		Id: "office", Name: "Office", TimeZone: "Europe/Berlin",
		Weekly:   []*gatehousev1.WeeklyWindow{{Day: gatehousev1.Weekday_WEEKDAY_MONDAY, Start: "09:00", End: "17:00"}, {Day: gatehousev1.Weekday_WEEKDAY_TUESDAY, Start: "09:00", End: "17:00"}},
		Holidays: []*gatehousev1.Holiday{{Date: "2026-12-08", Name: "Closed day", Closed: true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme",
		Portal: &gatehousev1.Portal{Id: "corp", BusinessHoursId: bh.GetBusinessHours().GetId()}, UpdateMask: mask("business_hours_id")}); err != nil {
		t.Fatal(err)
	}
	e.MustStartSupport("alice", "corp-eu") // open: Monday 09:00 local

	set("2026-12-07T16:30:00Z") // Monday 17:30 local: closed; Tuesday is a holiday
	_, err = e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme",
		Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: "alice", CustomerId: "c", PortalId: "corp-eu"})
	st := wantCode(t, err, codes.FailedPrecondition)
	if errorReason(st) != service.ReasonPortalClosed {
		t.Fatalf("reason %q", errorReason(st))
	}
	if next := errorMeta(st)["next_open"]; next != "2026-12-14T08:00:00Z" {
		t.Fatalf("next_open = %q, want the next Monday 09:00 Berlin", next)
	}
	// A set in use cannot be deleted; bad sets are refused field by field.
	_, err = e.admin.DeleteBusinessHours(ctx, &gatehousev1.DeleteBusinessHoursRequest{AccountId: "acme", Id: "office"})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = e.admin.CreateBusinessHours(ctx, &gatehousev1.CreateBusinessHoursRequest{AccountId: "acme", BusinessHours: &gatehousev1.BusinessHours{
		Name: "Bad", TimeZone: "Mars/Olympus",
		Weekly: []*gatehousev1.WeeklyWindow{{Day: gatehousev1.Weekday_WEEKDAY_MONDAY, Start: "25:00", End: "17:00"}, {Start: "09:00", End: "10:00"}},
	}})
	wantInvalid(t, err, "business_hours.time_zone", "business_hours.weekly[1].day")
}
