package server

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
)

// TestAudit_EveryAdminWrite exercises every mutating AdminService RPC as a
// known caller and checks that each left an audit event naming the caller,
// the RPC, the resource and its revision; that rejected writes leave none;
// and that token secrets never reach the log.
func TestAudit_EveryAdminWrite(t *testing.T) {
	t.Parallel()
	e := mustStartAuth(t)
	op := withToken(ctxT(t), e.tokens["operator"])
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a := e.admin
	must(a.UpdateAccount(op, &gatehousev1.UpdateAccountRequest{Account: &gatehousev1.Account{Id: "a", DisplayName: "A renamed"}, UpdateMask: mask("display_name")}))
	must(a.UpdateLiveGuideSettings(op, &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: &gatehousev1.LiveGuideSettings{AccountId: "a", Chat: true}, UpdateMask: mask("chat")}))
	must(a.UpdateCustomization(op, &gatehousev1.UpdateCustomizationRequest{Customization: &gatehousev1.Customization{AccountId: "a", Language: "fr", AgentAlias: "Conseiller", CustomerAlias: "Client"}, UpdateMask: mask("agent_alias", "customer_alias")}))
	must(a.GenerateCobrowseUrl(op, &gatehousev1.GenerateCobrowseUrlRequest{AccountId: "a"}))
	must(a.SetCobrowseUrl(op, &gatehousev1.SetCobrowseUrlRequest{AccountId: "b", Url: "https://bravo.support.me"}))
	must(a.CreateAllowlistEntry(op, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "a", Entry: &gatehousev1.AllowlistEntry{Id: "site", Pattern: "example.com"}}))
	must(a.UpdateAllowlistEntry(op, &gatehousev1.UpdateAllowlistEntryRequest{AccountId: "a", Entry: &gatehousev1.AllowlistEntry{Id: "site", Description: "main site"}, UpdateMask: mask("description")}))
	must(a.DeleteAllowlistEntry(op, &gatehousev1.DeleteAllowlistEntryRequest{AccountId: "a", Id: "site"}))
	must(a.CreatePrivacyRule(op, &gatehousev1.CreatePrivacyRuleRequest{AccountId: "a", Rule: &gatehousev1.PrivacyRule{Id: "pay", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: "button.pay"}}))
	must(a.UpdatePrivacyRule(op, &gatehousev1.UpdatePrivacyRuleRequest{AccountId: "a", Rule: &gatehousev1.PrivacyRule{Id: "pay", Selector: "button.pay-now"}, UpdateMask: mask("selector")}))
	must(a.DeletePrivacyRule(op, &gatehousev1.DeletePrivacyRuleRequest{AccountId: "a", Id: "pay"}))
	must(a.CreateBusinessHours(op, &gatehousev1.CreateBusinessHoursRequest{AccountId: "a", BusinessHours: &gatehousev1.BusinessHours{Id: "office", Name: "Office", TimeZone: "UTC",
		Weekly: []*gatehousev1.WeeklyWindow{{Day: gatehousev1.Weekday_WEEKDAY_MONDAY, Start: "09:00", End: "17:00"}}}}))
	must(a.UpdateBusinessHours(op, &gatehousev1.UpdateBusinessHoursRequest{AccountId: "a", BusinessHours: &gatehousev1.BusinessHours{Id: "office", Name: "Main office"}, UpdateMask: mask("name")}))
	must(a.DeleteBusinessHours(op, &gatehousev1.DeleteBusinessHoursRequest{AccountId: "a", Id: "office"}))
	must(a.CreatePortal(op, &gatehousev1.CreatePortalRequest{AccountId: "a", Portal: &gatehousev1.Portal{Id: "sub", ParentId: "top", Name: "Sub"}}))
	must(a.UpdatePortal(op, &gatehousev1.UpdatePortalRequest{AccountId: "a", Portal: &gatehousev1.Portal{Id: "sub", Name: "Sub 2"}, UpdateMask: mask("name")}))
	must(a.DeletePortal(op, &gatehousev1.DeletePortalRequest{AccountId: "a", Id: "sub"}))
	must(a.CreateTeam(op, &gatehousev1.CreateTeamRequest{AccountId: "a", Team: &gatehousev1.Team{Id: "spare", Name: "Spare"}}))
	must(a.UpdateTeam(op, &gatehousev1.UpdateTeamRequest{AccountId: "a", Team: &gatehousev1.Team{Id: "spare", Name: "Spare 2"}, UpdateMask: mask("name")}))
	must(a.DeleteTeam(op, &gatehousev1.DeleteTeamRequest{AccountId: "a", Id: "spare"}))
	must(a.CreateRepresentative(op, &gatehousev1.CreateRepresentativeRequest{AccountId: "a", Representative: &gatehousev1.Representative{Id: "temp", DisplayName: "Temp"}}))
	must(a.UpdateRepresentative(op, &gatehousev1.UpdateRepresentativeRequest{AccountId: "a", Representative: &gatehousev1.Representative{Id: "temp", DisplayName: "Temp 2"}, UpdateMask: mask("display_name")}))
	must(a.DeleteRepresentative(op, &gatehousev1.DeleteRepresentativeRequest{AccountId: "a", Id: "temp"}))
	must(a.CreateAccount(op, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "gone", DisplayName: "Gone"}}))
	must(a.DeleteAccount(op, &gatehousev1.DeleteAccountRequest{Id: "gone"}))
	must(a.ApplyAccount(op, &gatehousev1.ApplyAccountRequest{Document: &gatehousev1.AccountDocument{Format: "gatehouse.account/v1",
		Account: &gatehousev1.Account{Id: "applied", DisplayName: "Applied"}}}))
	tokens, err := a.ListCallerTokens(op, &gatehousev1.ListCallerTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens.GetTokens() {
		if tok.GetName() == "decider all" {
			must(a.RevokeCallerToken(op, &gatehousev1.RevokeCallerTokenRequest{Id: tok.GetId()}))
		}
	}
	// Two queued notifications: one retried to a corrected address, one
	// dropped.
	var queued [2]store.OutboxMessage
	if _, err := e.store.Update(ctxT(t), func(tx store.Tx) error {
		for i := range queued {
			queued[i] = store.OutboxMessage{AccountID: "a", SessionID: fmt.Sprintf("s-queued-%d", i), To: "typo@exmaple.com", XML: "<r/>"}
			if err := store.EnqueueOutbox(tx, &queued[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	must(a.RetryNotification(op, &gatehousev1.RetryNotificationRequest{Id: queued[0].ID, To: "ops@example.com"}))
	must(a.DeleteNotification(op, &gatehousev1.DeleteNotificationRequest{Id: queued[1].ID}))
	// A rejected write leaves no event.
	before := e.store.Revision()
	_, err = a.UpdateLiveGuideSettings(op, &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: &gatehousev1.LiveGuideSettings{AccountId: "a"}, UpdateMask: mask("nope")})
	wantCode(t, err, codes.InvalidArgument)
	if e.store.Revision() != before {
		t.Fatal("a rejected write committed")
	}

	var events []*gatehousev1.AuditEvent
	for token := ""; ; {
		resp, err := a.ListAuditEvents(op, &gatehousev1.ListAuditEventsRequest{PageSize: 7, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, resp.GetEvents()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	byRPC := map[string][]*gatehousev1.AuditEvent{}
	var lastRev uint64
	for _, ev := range events {
		name := ev.GetRpc()[strings.LastIndexByte(ev.GetRpc(), '/')+1:]
		byRPC[name] = append(byRPC[name], ev)
		if ev.GetRevision() < lastRev {
			t.Fatalf("events out of order: %v", ev)
		}
		lastRev = ev.GetRevision()
		if ev.GetTime() == nil || ev.GetResourceType() == "" || ev.GetResourceId() == "" || ev.GetCaller() == "" {
			t.Errorf("incomplete event %v", ev)
		}
		if strings.Contains(ev.GetBeforeJson()+ev.GetAfterJson(), `"hash"`) {
			t.Errorf("token hash in the audit log: %v", ev)
		}
	}
	admin := gatehousev1.File_gatehouse_v1_admin_service_proto.Services().Get(0)
	for i := range admin.Methods().Len() {
		name := string(admin.Methods().Get(i).Name())
		if strings.HasPrefix(name, "Get") || strings.HasPrefix(name, "List") || name == "BackupStore" || name == "ExportAccount" || name == "TestAllowlistUrl" { // reads
			continue
		}
		evs := byRPC[name]
		if len(evs) == 0 {
			t.Errorf("%s left no audit event", name)
			continue
		}
		if !strings.HasPrefix(evs[0].GetCaller(), "bootstrap") {
			t.Errorf("%s: caller %q, want the operator token's name", name, evs[0].GetCaller())
		}
	}
	// Before and after of a settings update.
	var settings *gatehousev1.AuditEvent
	for _, ev := range byRPC["UpdateLiveGuideSettings"] {
		settings = ev
	}
	if settings == nil || !strings.Contains(settings.GetBeforeJson(), `"chat":false`) || !strings.Contains(settings.GetAfterJson(), `"chat":true`) || settings.GetAccountId() != "a" || settings.GetResourceType() != "live_guide_settings" {
		t.Fatalf("settings event = %v", settings)
	}
	// Deletes have no after, creates no before.
	for _, ev := range byRPC["DeleteAllowlistEntry"] {
		if ev.GetAfterJson() != "" || ev.GetBeforeJson() == "" {
			t.Errorf("delete event = %v", ev)
		}
	}
	// Filters, and scope: admin of a sees only a's events.
	filtered, err := a.ListAuditEvents(withToken(ctxT(t), e.tokens["admin-a"]), &gatehousev1.ListAuditEventsRequest{AccountId: "a", ResourceType: "allowlist_entry", ResourceId: "site"})
	if err != nil {
		t.Fatal(err)
	}
	if len(filtered.GetEvents()) != 3 {
		t.Fatalf("allowlist entry site: %d events, want create, update, delete", len(filtered.GetEvents()))
	}
	_, err = a.ListAuditEvents(withToken(ctxT(t), e.tokens["admin-a"]), &gatehousev1.ListAuditEventsRequest{AccountId: "b"})
	wantCode(t, err, codes.PermissionDenied)
	_, err = a.ListAuditEvents(withToken(ctxT(t), e.tokens["admin-a"]), &gatehousev1.ListAuditEventsRequest{})
	wantCode(t, err, codes.PermissionDenied)
}

// TestAudit_ScanIsBoundedPerCall: a narrow filter over a long log examines
// at most AuditScanLimit events per call; a page may then come back short,
// or empty, with a token, and paging on finds every matching event once,
// in order.
func TestAudit_ScanIsBoundedPerCall(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "", func(o *Options) { o.AuditScanLimit = 5 })
	ctx := ctxT(t)
	e.MustCreateAccount("rare")
	e.MustCreateAccount("busy")
	for i := range 12 {
		e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "busy", Chat: i%2 == 0}, "chat")
	}
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "rare", Chat: true}, "chat")
	for i := range 12 {
		e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "busy", Chat: i%2 == 1}, "chat")
	}
	var got []string
	calls, emptyWithToken := 0, 0
	for token := ""; ; {
		resp, err := e.admin.ListAuditEvents(ctx, &gatehousev1.ListAuditEventsRequest{AccountId: "rare", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		calls++
		for _, ev := range resp.GetEvents() {
			got = append(got, ev.GetResourceType()+"/"+ev.GetResourceId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		if len(resp.GetEvents()) == 0 {
			emptyWithToken++
		}
		if calls > 100 {
			t.Fatal("paging does not end")
		}
	}
	// rare: account, settings (create) and the representative, then one
	// settings update.
	want := []string{"account/rare", "live_guide_settings/rare", "representative/alice", "live_guide_settings/rare"}
	if !slices.Equal(got, want) {
		t.Fatalf("events of rare over %d calls: %q; want %q", calls, got, want)
	}
	total := 0
	for token := ""; ; {
		resp, err := e.admin.ListAuditEvents(ctx, &gatehousev1.ListAuditEventsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		total += len(resp.GetEvents())
		if len(resp.GetEvents()) > 5 {
			t.Fatalf("one call returned %d events; at most 5 may be examined", len(resp.GetEvents()))
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if minCalls := (total + 4) / 5; calls < minCalls || emptyWithToken == 0 {
		t.Fatalf("%d calls (%d empty pages with a token) for a filter over %d events examined 5 at a time; want at least %d calls and some empty pages", calls, emptyWithToken, total, minCalls)
	}
}

// resource_type names one of the kinds the log records, else the filter
// would silently match nothing; every kind recorded is among them.
func TestAudit_ResourceTypeIsAKnownKind(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustStartSession("acme")
	_, err := e.admin.ListAuditEvents(ctx, &gatehousev1.ListAuditEventsRequest{ResourceType: "representatives"})
	wantInvalid(t, err, "resource_type")
	known := store.AuditResourceTypes()
	for _, typ := range known {
		if _, err := e.admin.ListAuditEvents(ctx, &gatehousev1.ListAuditEventsRequest{ResourceType: typ}); err != nil {
			t.Errorf("resource_type %s: %v", typ, err)
		}
	}
	all, err := e.admin.ListAuditEvents(ctx, &gatehousev1.ListAuditEventsRequest{PageSize: 1000})
	if err != nil || len(all.GetEvents()) < 3 {
		t.Fatalf("events: %v %v", all, err)
	}
	for _, ev := range all.GetEvents() {
		if !slices.Contains(known, ev.GetResourceType()) {
			t.Errorf("event of type %q, not among %v", ev.GetResourceType(), known)
		}
	}
}
