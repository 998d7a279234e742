package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/accountdoc"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// diffLines returns "" when want and got are equal, else both.
func diffLines(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	return fmt.Sprintf("want %q\n got %q", want, got)
}

// testDocument is an account with something in every section.
func testDocument(acct string) *gatehousev1.AccountDocument {
	return &gatehousev1.AccountDocument{
		Format:   accountdoc.Format,
		Account:  &gatehousev1.Account{Id: acct, DisplayName: "Acme"},
		Settings: &gatehousev1.LiveGuideSettings{AgentClickRestricted: true, ClipboardAgent: true, ClipboardCustomer: true, ShowDisclaimer: true, SessionStartUrl: "https://shop.example.com/start"},
		Customizations: []*gatehousev1.Customization{
			{Language: "fr", DisclaimerText: "Session partagée", AgentAlias: "Conseiller", CustomerAlias: "Client"},
		},
		Allowlist: []*gatehousev1.AllowlistEntry{
			{Id: "shop", Pattern: "Shop.Example.com", Description: "the shop"},
			{Id: "help", Pattern: "help.example.com/docs/"},
		},
		PrivacyRules: []*gatehousev1.PrivacyRule{
			{Id: "pay", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: "button#pay", UrlPattern: "shop.example.com/checkout"},
		},
		BusinessHours: []*gatehousev1.BusinessHours{
			{Id: "office", Name: "Office", TimeZone: "Europe/Berlin", Weekly: []*gatehousev1.WeeklyWindow{{Day: gatehousev1.Weekday_WEEKDAY_MONDAY, Start: "08:00", End: "18:00"}}},
		},
		Portals: []*gatehousev1.Portal{
			// The subportal is listed before its parent: the apply orders them.
			{Id: "desk-eu", ParentId: "desk", Name: "Desk EU", Functions: &gatehousev1.SupportFunctions{SendFiles: true, ReceiveFiles: true}},
			{Id: "desk", Name: "Desk", Functions: &gatehousev1.SupportFunctions{SendFiles: true}, BusinessHoursId: "office"},
		},
		Teams: []*gatehousev1.Team{
			{Id: "tier2", ParentId: "tier1", Name: "Tier 2"},
			{Id: "tier1", Name: "Tier 1", PortalId: "desk"},
		},
		Representatives: []*gatehousev1.Representative{
			{Id: "alice", DisplayName: "Alice", TeamId: "tier1", LiveGuideEnabled: true, Functions: &gatehousev1.SupportFunctions{SendFiles: true}},
			{Id: "bob", DisplayName: "Bob", TeamId: "tier2"},
		},
	}
}

func (e *testEnv) apply(doc *gatehousev1.AccountDocument, dry, prune bool, expect uint64) (*gatehousev1.ApplyAccountResponse, error) {
	return e.admin.ApplyAccount(ctxT(e.t), &gatehousev1.ApplyAccountRequest{Document: doc, DryRun: dry, Prune: prune, ExpectedRevision: expect})
}

func (e *testEnv) mustExport(acct string) *gatehousev1.AccountDocument {
	e.t.Helper()
	resp, err := e.admin.ExportAccount(ctxT(e.t), &gatehousev1.ExportAccountRequest{AccountId: acct})
	if err != nil {
		e.t.Fatalf("ExportAccount: %v", err)
	}
	return resp.GetDocument()
}

// summary is a plan as "action section/id" lines.
func summary(chs []*gatehousev1.ResourceChange) []string {
	var out []string
	for _, c := range chs {
		out = append(out, fmt.Sprintf("%s %s/%s", c.GetAction(), c.GetSection(), c.GetId()))
	}
	return out
}

func withoutRevision(d *gatehousev1.AccountDocument) *gatehousev1.AccountDocument {
	d = proto.CloneOf(d)
	d.Revision = 0
	return d
}

func TestApplyAccount_PlanApplyIdempotentExport(t *testing.T) {
	e := MustStart(t, "")
	doc := testDocument("acme")

	plan, err := e.apply(doc, true, false, 0)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if plan.GetApplied() || len(plan.GetChanges()) == 0 {
		t.Fatalf("dry run: applied=%v with %d changes; want a plan and nothing applied", plan.GetApplied(), len(plan.GetChanges()))
	}
	if _, err := e.admin.ExportAccount(ctxT(t), &gatehousev1.ExportAccountRequest{AccountId: "acme"}); statusCode(err) != codes.NotFound {
		t.Fatalf("after a dry run the account exists (export: %v)", err)
	}
	rev0 := e.store.Revision()
	got, err := e.apply(doc, false, false, rev0)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !got.GetApplied() || got.GetRevision() <= rev0 {
		t.Fatalf("apply: applied=%v revision %d (before %d)", got.GetApplied(), got.GetRevision(), rev0)
	}
	if diff := diffLines(summary(plan.GetChanges()), summary(got.GetChanges())); diff != "" {
		t.Errorf("the apply did other than its plan (-plan +apply):\n%s", diff)
	}
	want := []string{
		"CHANGE_ACTION_CREATE account/acme", "CHANGE_ACTION_CREATE settings/acme", "CHANGE_ACTION_CREATE customizations/fr",
		"CHANGE_ACTION_CREATE allowlist/help", "CHANGE_ACTION_CREATE allowlist/shop", "CHANGE_ACTION_CREATE privacy_rules/pay",
		"CHANGE_ACTION_CREATE business_hours/office", "CHANGE_ACTION_CREATE portals/desk",
		// A top portal comes with its default subportal, as CreatePortal makes it.
		"CHANGE_ACTION_CREATE portals/desk-default", "CHANGE_ACTION_CREATE portals/desk-eu",
		"CHANGE_ACTION_CREATE teams/tier1", "CHANGE_ACTION_CREATE teams/tier2",
		"CHANGE_ACTION_CREATE representatives/alice", "CHANGE_ACTION_CREATE representatives/bob",
	}
	if diff := diffLines(want, summary(got.GetChanges())); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}

	// The same document again changes nothing, commits nothing, says so.
	rev1 := e.store.Revision()
	again, err := e.apply(doc, false, false, 0)
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if again.GetApplied() || len(again.GetChanges()) != 0 || e.store.Revision() != rev1 || again.GetRevision() != rev1 {
		t.Fatalf("second apply: applied=%v changes=%v store revision %d→%d, response %d", again.GetApplied(), summary(again.GetChanges()), rev1, e.store.Revision(), again.GetRevision())
	}
	// The default subportal is the account's and not the document's: kept,
	// and reported.
	if diff := diffLines([]string{"CHANGE_ACTION_DELETE portals/desk-default"}, summary(again.GetNotPruned())); diff != "" {
		t.Errorf("not pruned (-want +got):\n%s", diff)
	}

	// The export is what was applied, normalized (the pattern), read at
	// one revision, and applying it changes nothing either.
	ex := e.mustExport("acme")
	if ex.GetRevision() != rev1 {
		t.Errorf("export revision %d, want %d", ex.GetRevision(), rev1)
	}
	if got := ex.GetAllowlist()[1].GetPattern(); got != "shop.example.com" {
		t.Errorf("exported pattern %q, want it normalized", got)
	}
	if ids := []string{ex.GetPortals()[0].GetId(), ex.GetTeams()[0].GetId()}; !slices.Equal(ids, []string{"desk", "tier1"}) {
		t.Errorf("export lists %v first; want parents first", ids)
	}
	if r, err := e.apply(ex, false, true, ex.GetRevision()); err != nil || r.GetApplied() || len(r.GetChanges()) != 0 {
		t.Fatalf("applying the export with prune: %v, changes %v", err, summary(r.GetChanges()))
	}
	if again := e.mustExport("acme"); !proto.Equal(withoutRevision(again), withoutRevision(ex)) {
		t.Errorf("export changed:\n%s", prototext.Format(ex)+"\n---\n"+prototext.Format(again))
	}

	// A change: one field of a setting, of a representative's functions,
	// an entry gone, a rule added.
	doc2 := proto.CloneOf(ex)
	doc2.Settings.AgentClickRestricted = false
	doc2.Representatives[0].Functions.ReceiveFiles = true
	doc2.Allowlist = doc2.Allowlist[1:]
	doc2.PrivacyRules = append(doc2.PrivacyRules, &gatehousev1.PrivacyRule{Id: "card", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_DATA_MASK, Selector: "input.card"})
	p2, err := e.apply(doc2, true, false, ex.GetRevision())
	if err != nil {
		t.Fatal(err)
	}
	if diff := diffLines([]string{"CHANGE_ACTION_UPDATE settings/acme", "CHANGE_ACTION_CREATE privacy_rules/card", "CHANGE_ACTION_UPDATE representatives/alice"}, summary(p2.GetChanges())); diff != "" {
		t.Errorf("plan without prune (-want +got):\n%s", diff)
	}
	if f := p2.GetChanges()[0].GetFields(); len(f) != 1 || f[0].GetPath() != "agent_click_restricted" || f[0].GetBeforeJson() != "true" || f[0].GetAfterJson() != "" {
		t.Errorf("settings fields %v; want agent_click_restricted true → unset", f)
	}
	if f := p2.GetChanges()[2].GetFields(); len(f) != 1 || f[0].GetPath() != "functions.receive_files" {
		t.Errorf("representative fields %v; want functions.receive_files", f)
	}
	if !slices.Contains(summary(p2.GetNotPruned()), "CHANGE_ACTION_DELETE allowlist/help") {
		t.Errorf("not pruned %v lacks the removed entry", summary(p2.GetNotPruned()))
	}
	p3, err := e.apply(doc2, false, true, p2.GetRevision())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(summary(p3.GetChanges()), "CHANGE_ACTION_DELETE allowlist/help") {
		t.Errorf("apply with prune: %v", summary(p3.GetChanges()))
	}
	if r, err := e.apply(doc2, true, true, 0); err != nil || len(r.GetChanges()) != 0 || len(r.GetNotPruned()) != 0 {
		t.Fatalf("plan after apply: %v %v", err, summary(r.GetChanges()))
	}

	// A plan reviewed at an older revision is refused.
	_, err = e.apply(testDocument("acme"), false, false, p2.GetRevision())
	if st := wantCode(t, err, codes.Aborted); errorReason(st) != reasonAccountChanged {
		t.Errorf("stale expected revision: reason %q", errorReason(st))
	}

	// One audit event per apply, with its items; the records' own follow.
	ev, err := e.admin.ListAuditEvents(ctxT(t), &gatehousev1.ListAuditEventsRequest{AccountId: "acme", ResourceType: "account_apply"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.GetEvents()) != 2 {
		t.Fatalf("%d apply events, want 2 (one per committed apply)", len(ev.GetEvents()))
	}
}

func TestApplyAccount_FailureMidwayLeavesAccountAsItWas(t *testing.T) {
	var fs *faultyStore
	e := MustStart(t, "", func(o *Options) { fs = &faultyStore{Store: o.Store}; o.Store = fs })
	if _, err := e.apply(testDocument("acme"), false, false, 0); err != nil {
		t.Fatal(err)
	}
	before := e.mustExport("acme")
	doc := proto.CloneOf(before)
	doc.Settings.VoiceChat = true
	doc.Allowlist = append(doc.Allowlist, &gatehousev1.AllowlistEntry{Id: "new", Pattern: "new.example.org"})
	doc.Portals = append(doc.Portals, &gatehousev1.Portal{Id: "desk-us", ParentId: "desk", Name: "Desk US"})
	doc.Representatives[1].DisplayName = "Robert"
	doc.Teams = doc.Teams[:1] // tier2 goes, and bob with it ...
	doc.Representatives = doc.Representatives[:1]
	plan, err := e.apply(doc, true, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.GetChanges()) < 5 {
		t.Fatalf("plan %v: want a change in several sections", summary(plan.GetChanges()))
	}
	// Fail at every write of the transaction in turn: each attempt leaves
	// the account exactly as it was, at the same revision.
	for n := 1; ; n++ {
		dump, rev := e.dump(), e.store.Revision()
		fs.arm(n)
		_, err := e.apply(doc, false, true, 0)
		if !fs.fired() {
			if err != nil {
				t.Fatalf("apply without a failure: %v", err)
			}
			if n < 5 {
				t.Fatalf("the apply made only %d writes", n-1)
			}
			break
		}
		fs.arm(0)
		if err == nil {
			t.Fatalf("failure at write %d reported as success", n)
		}
		if got := e.dump(); !maps.Equal(got, dump) || e.store.Revision() != rev {
			t.Fatalf("failure at write %d changed the store (revision %d → %d)", n, rev, e.store.Revision())
		}
		if got := e.mustExport("acme"); !proto.Equal(got, before) {
			t.Fatalf("failure at write %d changed the account:\n%s", n, prototext.Format(got))
		}
	}
	if r, err := e.apply(doc, true, true, 0); err != nil || len(r.GetChanges()) != 0 {
		t.Fatalf("after the successful apply the plan is %v (%v)", summary(r.GetChanges()), err)
	}
}

// TestApplyAccount_RulesOfTheSingleRPCs: a document is refused with the
// same code as the single RPC that would make the same write, the field
// named by its place in the document, and nothing is written.
func TestApplyAccount_RulesOfTheSingleRPCs(t *testing.T) {
	e := MustStart(t, "")
	if _, err := e.apply(testDocument("acme"), false, false, 0); err != nil {
		t.Fatal(err)
	}
	base := e.mustExport("acme")
	cases := []struct {
		name  string
		edit  func(d *gatehousev1.AccountDocument)
		prune bool
		code  codes.Code
		field string
	}{
		{"malformed pattern", func(d *gatehousev1.AccountDocument) { d.Allowlist[0].Pattern = "ftp://x" }, false, codes.InvalidArgument, "document.allowlist[0].pattern"},
		{"public suffix", func(d *gatehousev1.AccountDocument) { d.Allowlist[1].Pattern = "co.uk" }, false, codes.InvalidArgument, "document.allowlist[1].pattern"},
		{"selector needing state", func(d *gatehousev1.AccountDocument) { d.PrivacyRules[0].Selector = "a:hover" }, false, codes.InvalidArgument, "document.privacy_rules[0].selector"},
		{"unknown portal of a team", func(d *gatehousev1.AccountDocument) { d.Teams[0].PortalId = "nope" }, false, codes.InvalidArgument, "document.teams[0].portal_id"},
		{"portal cycle", func(d *gatehousev1.AccountDocument) { d.Portals[0].ParentId = "desk-eu" }, false, codes.InvalidArgument, ""},
		{"start URL off the allowlist", func(d *gatehousev1.AccountDocument) { d.Settings.SessionStartUrl = "https://elsewhere.example.net/" }, false, codes.InvalidArgument, "document.settings.session_start_url"},
		{"empty alias", func(d *gatehousev1.AccountDocument) { d.Customizations[0].AgentAlias = " " }, false, codes.InvalidArgument, "document.customizations[0].agent_alias"},
		{"unknown language", func(d *gatehousev1.AccountDocument) { d.Customizations[0].Language = "xx" }, false, codes.InvalidArgument, "document.customizations[0].language"},
		{"no id", func(d *gatehousev1.AccountDocument) { d.Representatives[0].Id = "" }, false, codes.InvalidArgument, "document.representatives[0].id"},
		{"id twice", func(d *gatehousev1.AccountDocument) { d.Allowlist[1].Id = d.Allowlist[0].GetId() }, false, codes.InvalidArgument, "document.allowlist[1].id"},
		{"display name too long", func(d *gatehousev1.AccountDocument) { d.Account.DisplayName = string(make([]byte, 300)) }, false, codes.InvalidArgument, "document.account.display_name"},
		{"team in use pruned", func(d *gatehousev1.AccountDocument) { d.Teams = d.Teams[1:] }, true, codes.FailedPrecondition, ""},
		{"last subportal pruned", func(d *gatehousev1.AccountDocument) {
			d.Portals = slices.DeleteFunc(d.Portals, func(p *gatehousev1.Portal) bool { return p.GetParentId() != "" })
			d.Teams, d.Representatives = nil, nil
		}, true, codes.FailedPrecondition, ""},
		{"hours in use pruned", func(d *gatehousev1.AccountDocument) { d.BusinessHours = nil }, true, codes.FailedPrecondition, ""},
		{"wrong format", func(d *gatehousev1.AccountDocument) { d.Format = "gatehouse.account/v0" }, false, codes.InvalidArgument, "document.format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := proto.CloneOf(base)
			c.edit(d)
			rev := e.store.Revision()
			for _, dry := range []bool{true, false} {
				_, err := e.apply(d, dry, c.prune, 0)
				st := wantCode(t, err, c.code)
				if c.field != "" && !slices.Contains(fieldViolations(st), c.field) {
					t.Errorf("dry=%v: violations %v, want %s (%v)", dry, fieldViolations(st), c.field, err)
				}
			}
			if e.store.Revision() != rev {
				t.Errorf("a refused apply committed (revision %d → %d)", rev, e.store.Revision())
			}
		})
	}
}

// TestApplyAccount_CallersAsTheSingleRPCs: an apply may do only what the
// caller could do with the single RPCs: account admins change their
// account, only operators create accounts and set co-browse URLs.
func TestApplyAccount_CallersAsTheSingleRPCs(t *testing.T) {
	e := mustStartAuth(t)
	ctx := func(who string) context.Context { return withToken(ctxT(t), e.tokens[who]) }
	exp, err := e.admin.ExportAccount(ctx("admin-a"), &gatehousev1.ExportAccountRequest{AccountId: "a"})
	if err != nil {
		t.Fatal(err)
	}
	doc := exp.GetDocument()
	doc.Account.DisplayName = "A, renamed"
	if _, err := e.admin.ApplyAccount(ctx("admin-a"), &gatehousev1.ApplyAccountRequest{Document: doc}); err != nil {
		t.Fatalf("admin of a applying a's document: %v", err)
	}
	other := proto.CloneOf(doc)
	other.Account.Id = "b"
	newAcct := proto.CloneOf(doc)
	newAcct.Account.Id = "c"
	withURL := proto.CloneOf(doc)
	withURL.Account.CobrowseUrl = "https://alpha.support.me"
	for _, c := range []struct {
		who  string
		doc  *gatehousev1.AccountDocument
		dry  bool
		code codes.Code
	}{
		{"admin-a", other, false, codes.PermissionDenied},
		{"admin-a", other, true, codes.PermissionDenied},
		{"admin-all", newAcct, false, codes.PermissionDenied},
		{"admin-all", newAcct, true, codes.PermissionDenied},
		{"admin-a", withURL, false, codes.PermissionDenied},
		{"decider-a", doc, true, codes.PermissionDenied},
		{"operator", newAcct, false, codes.OK},
		{"operator", withURL, false, codes.OK},
	} {
		rev := e.store.Revision()
		_, err := e.admin.ApplyAccount(ctx(c.who), &gatehousev1.ApplyAccountRequest{Document: c.doc, DryRun: c.dry})
		if statusCode(err) != c.code {
			t.Errorf("%s applying %s (dry %v): %v, want %s", c.who, c.doc.GetAccount().GetId(), c.dry, err, c.code)
		}
		if c.code != codes.OK && e.store.Revision() != rev {
			t.Errorf("%s: a refused apply committed", c.who)
		}
	}
	// The account's own URL in its export is no change: its admin applies
	// the export.
	again, err := e.admin.ExportAccount(ctx("admin-a"), &gatehousev1.ExportAccountRequest{AccountId: "a"})
	if err != nil || again.GetDocument().GetAccount().GetCobrowseUrl() != "https://alpha.support.me" {
		t.Fatalf("export after the operator set the URL: %v %v", again, err)
	}
	again.Document.Account.DisplayName = "A, again"
	if _, err := e.admin.ApplyAccount(ctx("admin-a"), &gatehousev1.ApplyAccountRequest{Document: again.GetDocument()}); err != nil {
		t.Errorf("admin of a applying a's export with its URL: %v", err)
	}
	if _, err := e.admin.ExportAccount(ctx("admin-a"), &gatehousev1.ExportAccountRequest{AccountId: "b"}); statusCode(err) != codes.PermissionDenied {
		t.Errorf("admin of a exporting b: %v", err)
	}
	_, err = e.decide.CheckHypothetical(ctx("decider-a"), &gatehousev1.CheckHypotheticalRequest{AccountId: "b",
		Session: &gatehousev1.HypotheticalSession{Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice"},
		Checks:  []*gatehousev1.HypotheticalCheck{{Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}}})
	if statusCode(err) != codes.PermissionDenied {
		t.Errorf("decider of a asking about b: %v", err)
	}
	if _, err := e.decide.CheckHypothetical(ctx("decider-a"), &gatehousev1.CheckHypotheticalRequest{AccountId: "a",
		Session: &gatehousev1.HypotheticalSession{Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice"},
		Checks:  []*gatehousev1.HypotheticalCheck{{Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}}}); err != nil {
		t.Errorf("decider of a asking about a: %v", err)
	}
}

// TestCheckHypothetical_AgreesWithCheckFeatures: the same questions asked
// in a real session and in a hypothetical one of the same shape get the
// same answers, and the hypothetical one creates nothing.
func TestCheckHypothetical_AgreesWithCheckFeatures(t *testing.T) {
	e := MustStart(t, "")
	doc := testDocument("acme")
	doc.BusinessHours, doc.Portals[1].BusinessHoursId = nil, "" // open at any time
	doc.Portals[1].Functions.ReceiveFiles = true
	if _, err := e.apply(doc, false, false, 0); err != nil {
		t.Fatal(err)
	}
	el := func(tag, id string, classes ...string) *gatehousev1.Element {
		return &gatehousev1.Element{Tag: tag, Id: id, Classes: classes, Ancestors: []*gatehousev1.ElementNode{{Tag: "html"}, {Tag: "body"}}}
	}
	checks := []*gatehousev1.HypotheticalCheck{
		{Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_NAVIGATE, Url: "https://shop.example.com/"},
		{Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_NAVIGATE, Url: "https://evil.example.net/"},
		{Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_NAVIGATE, Url: "javascript:alert(1)"},
		{Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://shop.example.com/checkout", Element: el("button", "pay")},
		{Actor: customer("cust-9"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://shop.example.com/checkout", Element: el("button", "pay")},
		{Actor: customer("cust-9"), Feature: gatehousev1.Feature_FEATURE_CLIPBOARD, Url: "https://help.example.com/docs/a"},
		{Actor: agent("bob"), Feature: gatehousev1.Feature_FEATURE_CHAT},
		{Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_SEND_FILES},
		{Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_RECEIVE_FILES},
		{Actor: customer("cust-9"), Feature: gatehousev1.Feature_FEATURE_SEND_FILES},
		{Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_ANNOTATIONS},
	}
	for _, kind := range []gatehousev1.SessionKind{gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, gatehousev1.SessionKind_SESSION_KIND_SUPPORT} {
		portal := ""
		if kind == gatehousev1.SessionKind_SESSION_KIND_SUPPORT {
			portal = "desk-eu"
		}
		live, err := e.sessions.StartSession(ctxT(t), &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: kind, RepresentativeId: "alice", CustomerId: "cust-9", PortalId: portal})
		if err != nil {
			t.Fatal(err)
		}
		var reqs []*gatehousev1.CheckFeatureRequest
		for _, c := range checks {
			reqs = append(reqs, &gatehousev1.CheckFeatureRequest{SessionId: live.GetSession().GetId(), Actor: c.GetActor(), Feature: c.GetFeature(), Url: c.GetUrl(), Element: c.GetElement()})
		}
		want, err := e.decide.CheckFeatures(ctxT(t), &gatehousev1.CheckFeaturesRequest{Checks: reqs})
		if err != nil {
			t.Fatal(err)
		}
		rev := e.store.Revision()
		got, err := e.decide.CheckHypothetical(ctxT(t), &gatehousev1.CheckHypotheticalRequest{AccountId: "acme",
			Session: &gatehousev1.HypotheticalSession{Kind: kind, RepresentativeId: "alice", CustomerId: "cust-9", PortalId: portal}, Checks: checks})
		if err != nil {
			t.Fatal(err)
		}
		if e.store.Revision() != rev {
			t.Error("CheckHypothetical wrote to the store")
		}
		reasons := map[gatehousev1.Reason]bool{}
		for i := range checks {
			w, g := want.GetResults()[i].GetDecision(), got.GetDecisions()[i]
			reasons[w.GetReason()] = true
			if !proto.Equal(w, g) {
				t.Errorf("%s check %d: hypothetical %v, real %v", kind, i, g, w)
			}
		}
		if len(reasons) < 3 {
			t.Errorf("%s: only %d different reasons: the checks test little", kind, len(reasons))
		}
	}
	_, err := e.decide.CheckHypothetical(ctxT(t), &gatehousev1.CheckHypotheticalRequest{AccountId: "acme",
		Session: &gatehousev1.HypotheticalSession{Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "nobody"}, Checks: checks[:1]})
	wantCode(t, err, codes.NotFound)
	_, err = e.decide.CheckHypothetical(ctxT(t), &gatehousev1.CheckHypotheticalRequest{AccountId: "acme",
		Session: &gatehousev1.HypotheticalSession{RepresentativeId: "alice"}, Checks: []*gatehousev1.HypotheticalCheck{{Actor: agent("alice")}}})
	wantInvalid(t, err, "session.kind", "checks[0].feature")
}

// TestApplyAccount_OperationsLimit: a document needing more writes than
// the store's transactions hold is refused whole (RESOURCE_EXHAUSTED with
// the limit), planned or applied, and nothing is written; one within the
// bound applies, under a store that enforces the limit (the etcd driver's
// 127 operations: etcd's 128 less its change record), with its audit
// events.
func TestApplyAccount_OperationsLimit(t *testing.T) {
	e := mustStartStore(t, "", bolt.Options{Limits: store.Limits{MaxOps: 127}})
	bound := maxApplyWrites(e.store)
	if bound < 1 || 2*bound+2 > 127 {
		t.Fatalf("maxApplyWrites = %d leaves no room for the audit events in 127 operations", bound)
	}
	doc := &gatehousev1.AccountDocument{Format: accountdoc.Format, Account: &gatehousev1.Account{Id: "big", DisplayName: "Big"}}
	// The account and its settings are two writes.
	for i := range bound - 2 {
		doc.Allowlist = append(doc.Allowlist, &gatehousev1.AllowlistEntry{Id: fmt.Sprintf("e%d", i), Pattern: fmt.Sprintf("h%d.example.com", i)})
	}
	over := proto.CloneOf(doc)
	over.Allowlist = append(over.Allowlist, &gatehousev1.AllowlistEntry{Id: "one-more", Pattern: "more.example.com"})
	rev := e.store.Revision()
	for _, dry := range []bool{true, false} {
		_, err := e.apply(over, dry, false, 0)
		st := wantCode(t, err, codes.ResourceExhausted)
		if errorReason(st) != errs.ReasonApplyTooLarge || errorMeta(st)["limit"] != fmt.Sprint(bound) {
			t.Errorf("dry=%v: %v %v", dry, errorReason(st), errorMeta(st))
		}
	}
	if e.store.Revision() != rev {
		t.Fatal("a refused apply committed")
	}
	if r, err := e.apply(doc, false, false, 0); err != nil || !r.GetApplied() {
		t.Fatalf("a document at the bound: %v", err)
	}
	// Growing it in parts works: each apply writes only what differs.
	if r, err := e.apply(over, false, false, 0); err != nil || len(r.GetChanges()) != 1 {
		t.Fatalf("the next part: %v %v", err, summary(r.GetChanges()))
	}
}

// TestApplyAccount_PruneResetsTexts: texts are held by a document only
// when they differ from the built-in ones; pruning a language resets it.
func TestApplyAccount_PruneResetsTexts(t *testing.T) {
	e := MustStart(t, "")
	doc := testDocument("acme")
	if _, err := e.apply(doc, false, false, 0); err != nil {
		t.Fatal(err)
	}
	doc.Customizations = nil
	r, err := e.apply(doc, false, false, 0)
	if err != nil || len(r.GetChanges()) != 0 || diffLines([]string{"CHANGE_ACTION_DELETE customizations/fr", "CHANGE_ACTION_DELETE portals/desk-default"}, summary(r.GetNotPruned())) != "" {
		t.Fatalf("without prune: %v changes %v, not pruned %v", err, summary(r.GetChanges()), summary(r.GetNotPruned()))
	}
	r, err = e.apply(doc, false, true, 0)
	if err != nil || !slices.Contains(summary(r.GetChanges()), "CHANGE_ACTION_DELETE customizations/fr") {
		t.Fatalf("with prune: %v %v", err, summary(r.GetChanges()))
	}
	if got := e.mustExport("acme").GetCustomizations(); len(got) != 0 {
		t.Fatalf("texts after prune: %v", got)
	}
	c, err := e.admin.GetCustomization(ctxT(t), &gatehousev1.GetCustomizationRequest{AccountId: "acme", Language: "fr"})
	if err != nil || c.GetCustomization().GetAgentAlias() == "Conseiller" {
		t.Fatalf("fr after prune: %v %v", c, err)
	}
}
