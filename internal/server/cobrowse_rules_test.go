package server

import (
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"google.golang.org/grpc/codes"
)

func (e *testEnv) MustAllow(acct, id, pattern string) *gatehousev1.AllowlistEntry {
	e.t.Helper()
	resp, err := e.admin.CreateAllowlistEntry(ctxT(e.t), &gatehousev1.CreateAllowlistEntryRequest{AccountId: acct,
		Entry: &gatehousev1.AllowlistEntry{Id: id, Pattern: pattern}})
	if err != nil {
		e.t.Fatalf("CreateAllowlistEntry(%s): %v", pattern, err)
	}
	return resp.GetEntry()
}

func (e *testEnv) MustPrivacyRule(acct string, r *gatehousev1.PrivacyRule) *gatehousev1.PrivacyRule {
	e.t.Helper()
	resp, err := e.admin.CreatePrivacyRule(ctxT(e.t), &gatehousev1.CreatePrivacyRuleRequest{AccountId: acct, Rule: r})
	if err != nil {
		e.t.Fatalf("CreatePrivacyRule(%v): %v", r, err)
	}
	return resp.GetRule()
}

func TestAllowlist_CRUDAndValidation(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")

	got := e.MustAllow("acme", "main", "  WWW.Example.COM.:443/Help/../docs/ ")
	if got.GetPattern() != "www.example.com:443/docs/" || got.GetRevision() == 0 {
		t.Fatalf("normalized entry = %v", got)
	}
	idn := e.MustAllow("acme", "", "bücher.example")
	if idn.GetPattern() != "xn--bcher-kva.example" || !service.IsSlug(idn.GetId()) {
		t.Fatalf("IDN entry = %v", idn)
	}
	e.MustAllow("acme", "intranet", "intranet:8080")

	for _, tc := range []struct{ name, pattern string }{
		{"empty", ""},
		{"tld", "com"},
		{"public suffix", "co.uk"},
		{"wildcard public suffix", "*.co.uk"},
		{"hosting suffix", "github.io"},
		{"javascript", "javascript:alert(1)"},
		{"ftp", "ftp://example.com"},
		{"bare star", "*"},
		{"inner star", "ex*ample.com"},
		{"userinfo", "user@example.com"},
		{"query", "example.com/?q=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme",
				Entry: &gatehousev1.AllowlistEntry{Pattern: tc.pattern}})
			wantInvalid(t, err, "entry.pattern")
		})
	}
	_, err := e.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme",
		Entry: &gatehousev1.AllowlistEntry{Id: "main", Pattern: "example.org"}})
	wantCode(t, err, codes.AlreadyExists)

	upd, err := e.admin.UpdateAllowlistEntry(ctx, &gatehousev1.UpdateAllowlistEntryRequest{AccountId: "acme",
		Entry: &gatehousev1.AllowlistEntry{Id: "main", Pattern: "*.Example.com", Etag: got.GetEtag()}, UpdateMask: mask("pattern")})
	if err != nil {
		t.Fatal(err)
	}
	if upd.GetEntry().GetPattern() != "*.example.com" {
		t.Fatalf("updated = %v", upd.GetEntry())
	}
	_, err = e.admin.UpdateAllowlistEntry(ctx, &gatehousev1.UpdateAllowlistEntryRequest{AccountId: "acme",
		Entry: &gatehousev1.AllowlistEntry{Id: "main", Pattern: "com"}, UpdateMask: mask("pattern")})
	wantInvalid(t, err, "entry.pattern")

	list, err := e.admin.ListAllowlistEntries(ctx, &gatehousev1.ListAllowlistEntriesRequest{AccountId: "acme", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetEntries()) != 2 || list.GetNextPageToken() == "" {
		t.Fatalf("first page = %v", list)
	}
	// Accounts are isolated.
	_, err = e.admin.GetAllowlistEntry(ctx, &gatehousev1.GetAllowlistEntryRequest{AccountId: "other", Id: "main"})
	wantCode(t, err, codes.NotFound)
	other, err := e.admin.ListAllowlistEntries(ctx, &gatehousev1.ListAllowlistEntriesRequest{AccountId: "other"})
	if err != nil || len(other.GetEntries()) != 0 {
		t.Fatalf("other account sees %v (%v)", other, err)
	}
	if _, err := e.admin.DeleteAllowlistEntry(ctx, &gatehousev1.DeleteAllowlistEntryRequest{AccountId: "acme", Id: "main"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.GetAllowlistEntry(ctx, &gatehousev1.GetAllowlistEntryRequest{AccountId: "acme", Id: "main"})
	wantCode(t, err, codes.NotFound)
}

func TestCheckFeature_URLAndAllowlist(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	check := func(actor *gatehousev1.Actor, f gatehousev1.Feature, frame gatehousev1.Frame, url string) *gatehousev1.Decision {
		t.Helper()
		return e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: actor, Feature: f, Frame: frame, Url: url}).GetDecision()
	}
	top, iframe := gatehousev1.Frame_FRAME_TOP_LEVEL, gatehousev1.Frame_FRAME_IFRAME
	nav, click := gatehousev1.Feature_FEATURE_NAVIGATE, gatehousev1.Feature_FEATURE_CLICK

	// Empty allowlist: every http(s) page, nothing else.
	if d := check(agent("alice"), click, top, "https://anything.example.net/x"); !d.GetAllowed() {
		t.Fatalf("empty allowlist denied: %v", d)
	}
	for url, want := range map[string]gatehousev1.Reason{
		"javascript:alert(1)":             gatehousev1.Reason_REASON_URL_NOT_PERMITTED,
		"data:text/html,hi":               gatehousev1.Reason_REASON_URL_NOT_PERMITTED,
		"file:///etc/passwd":              gatehousev1.Reason_REASON_URL_NOT_PERMITTED,
		"view-source:https://example.com": gatehousev1.Reason_REASON_URL_NOT_PERMITTED,
		"http://":                         gatehousev1.Reason_REASON_URL_INVALID,
		"not a url":                       gatehousev1.Reason_REASON_URL_INVALID,
	} {
		if d := check(customer("cust-1"), nav, iframe, url); d.GetReason() != want || d.GetAllowed() {
			t.Errorf("%q: %v, want %v", url, d, want)
		}
	}

	entry := e.MustAllow("acme", "main", "example.com")
	if d := check(agent("alice"), click, top, "https://WWW.EXAMPLE.com./a"); !d.GetAllowed() || d.GetRule() != entry.GetId() {
		t.Fatalf("allowlisted click: %v", d)
	}
	hostile := []string{
		"https://example.com.evil.net/",
		"https://badexample.com/",
		"https://example.com@evil.net/",
		"https://evil.net\\@example.com/",
		"https://evil.net/example.com",
		"https://evil.net/?u=https://example.com",
		"https://evil.net#example.com",
		"https://exаmple.com/", // Cyrillic a
		"https://example.com%2eevil.net/",
		"http://127.0.0.1/",
	}
	for _, url := range hostile {
		for _, actor := range []*gatehousev1.Actor{agent("alice"), customer("cust-1")} {
			d := check(actor, click, top, url)
			if d.GetAllowed() {
				t.Errorf("%q allowed for %v on the top level: %v", url, actor.GetRole(), d)
			}
		}
		// Off the allowlist in an iframe: the frame may navigate, the
		// customer may act, the agent may not.
		if d := check(agent("alice"), nav, iframe, url); !d.GetAllowed() && d.GetReason() == gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED {
			t.Errorf("%q: iframe navigation denied: %v", url, d)
		}
		if d := check(agent("alice"), click, iframe, url); d.GetAllowed() {
			t.Errorf("%q: agent may act in a non-allowlisted iframe: %v", url, d)
		}
	}
	if d := check(customer("cust-1"), click, iframe, "https://other.example.org/"); !d.GetAllowed() {
		t.Fatalf("customer in an iframe: %v", d)
	}
	if d := check(agent("alice"), click, top, "https://other.example.org/"); d.GetReason() != gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED || d.GetRule() != "allowlist" {
		t.Fatalf("non-allowlisted: %v", d)
	}
	// Features that do not look at the URL are not affected.
	if d := check(customer("cust-1"), gatehousev1.Feature_FEATURE_CHAT, top, ""); d.GetReason() != gatehousev1.Reason_REASON_FEATURE_DISABLED {
		t.Fatalf("chat: %v", d)
	}

	// The session start URL must be allowlisted once there is an allowlist.
	_, err := e.admin.UpdateLiveGuideSettings(ctxT(t), &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", SessionStartUrl: "https://other.example.org/start"}, UpdateMask: mask("session_start_url")})
	wantInvalid(t, err, "settings.session_start_url")
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", SessionStartUrl: "https://help.example.com/start"}, "session_start_url")
}

// TestUpdateSettings_StartURLCheckedWhenSet: the start URL is checked
// against the allowlist when it changes, not on every update of another
// switch (that check reads and compiles the whole allowlist, so a loop of
// switch updates on a 10 000-entry account cost every tenant its CPU): an
// update of another switch succeeds although an entry deleted since made
// the stored start URL unlisted, and setting that URL again is refused.
func TestUpdateSettings_StartURLCheckedWhenSet(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	e.MustAllow("acme", "help", "help.example.com")
	e.MustAllow("acme", "shop", "shop.example.com")
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", SessionStartUrl: "https://help.example.com/start"}, "session_start_url")
	if _, err := e.admin.DeleteAllowlistEntry(ctxT(t), &gatehousev1.DeleteAllowlistEntryRequest{AccountId: "acme", Id: "help"}); err != nil {
		t.Fatal(err)
	}
	if got := e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", Chat: true}, "chat"); !got.GetChat() || got.GetSessionStartUrl() != "https://help.example.com/start" {
		t.Fatalf("settings after a chat update: %v", got)
	}
	_, err := e.admin.UpdateLiveGuideSettings(ctxT(t), &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", SessionStartUrl: "https://help.example.com/other"}, UpdateMask: mask("session_start_url")})
	wantInvalid(t, err, "settings.session_start_url")
}

func TestCheckFeature_PrivacyRules(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	block := e.MustPrivacyRule("acme", &gatehousev1.PrivacyRule{Id: "no-pay", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: "form.checkout button.pay"})
	maskRule := e.MustPrivacyRule("acme", &gatehousev1.PrivacyRule{Id: "card", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_DATA_MASK,
		Selector: "input[name=cvv], #card-number", UrlPattern: "shop.example.com/checkout"})
	if maskRule.GetUrlPattern() != "shop.example.com/checkout" || block.GetSelector() != "form.checkout button.pay" {
		t.Fatalf("stored rules %v %v", block, maskRule)
	}
	form := []*gatehousev1.ElementNode{{Tag: "html"}, {Tag: "body"}, {Tag: "form", Classes: []string{"checkout"}}}
	payButton := &gatehousev1.Element{Tag: "button", Classes: []string{"btn", "pay"}, Ancestors: form}
	otherButton := &gatehousev1.Element{Tag: "button", Classes: []string{"btn"}, Ancestors: form}
	cvv := &gatehousev1.Element{Tag: "input", Attributes: map[string]string{"name": "cvv"}, Ancestors: form}
	check := func(actor *gatehousev1.Actor, f gatehousev1.Feature, url string, el *gatehousev1.Element) *gatehousev1.Decision {
		t.Helper()
		return e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: actor, Feature: f, Url: url, Element: el}).GetDecision()
	}
	const shop = "https://shop.example.com/checkout/step1"
	for _, tc := range []struct {
		name  string
		actor *gatehousev1.Actor
		f     gatehousev1.Feature
		url   string
		el    *gatehousev1.Element
		want  gatehousev1.Reason
		rule  string
	}{
		{"agent clicks pay", agent("alice"), gatehousev1.Feature_FEATURE_CLICK, shop, payButton, gatehousev1.Reason_REASON_ELEMENT_BLOCKED, "no-pay"},
		{"customer clicks pay", customer("cust-1"), gatehousev1.Feature_FEATURE_CLICK, shop, payButton, gatehousev1.Reason_REASON_ALLOWED, ""},
		{"agent clicks other", agent("alice"), gatehousev1.Feature_FEATURE_CLICK, shop, otherButton, gatehousev1.Reason_REASON_ALLOWED, ""},
		{"agent clicks without element", agent("alice"), gatehousev1.Feature_FEATURE_CLICK, shop, nil, gatehousev1.Reason_REASON_ELEMENT_BLOCKED, "no-pay"},
		{"agent views cvv", agent("alice"), gatehousev1.Feature_FEATURE_VIEW_ELEMENT, shop, cvv, gatehousev1.Reason_REASON_ELEMENT_MASKED, "card"},
		{"agent types cvv", agent("alice"), gatehousev1.Feature_FEATURE_TYPE, shop, cvv, gatehousev1.Reason_REASON_ELEMENT_MASKED, "card"},
		{"agent views cvv elsewhere", agent("alice"), gatehousev1.Feature_FEATURE_VIEW_ELEMENT, "https://shop.example.com/cart", cvv, gatehousev1.Reason_REASON_ALLOWED, ""},
		{"agent clicks cvv (mask is not block)", agent("alice"), gatehousev1.Feature_FEATURE_CLICK, shop, cvv, gatehousev1.Reason_REASON_ALLOWED, ""},
		{"customer views cvv", customer("cust-1"), gatehousev1.Feature_FEATURE_VIEW_ELEMENT, shop, cvv, gatehousev1.Reason_REASON_ALLOWED, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := check(tc.actor, tc.f, tc.url, tc.el)
			if d.GetReason() != tc.want || d.GetRule() != tc.rule || d.GetAllowed() != (tc.want == gatehousev1.Reason_REASON_ALLOWED) {
				t.Fatalf("got %v, want %v rule %q", d, tc.want, tc.rule)
			}
		})
	}

	for _, tc := range []struct{ name, selector string }{
		{"hover", "button:hover"},
		{"nth-child", "li:nth-child(2)"},
		{"sibling", "label + input"},
		{"general sibling", "h1 ~ p"},
		{"empty", ""},
		{"garbage", "[["},
	} {
		t.Run("reject "+tc.name, func(t *testing.T) {
			_, err := e.admin.CreatePrivacyRule(ctx, &gatehousev1.CreatePrivacyRuleRequest{AccountId: "acme",
				Rule: &gatehousev1.PrivacyRule{Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: tc.selector}})
			wantInvalid(t, err, "rule.selector")
		})
	}
	_, err := e.admin.CreatePrivacyRule(ctx, &gatehousev1.CreatePrivacyRuleRequest{AccountId: "acme",
		Rule: &gatehousev1.PrivacyRule{Selector: "a", UrlPattern: "com"}})
	wantInvalid(t, err, "rule.kind", "rule.url_pattern")

	// Deleting the rule lifts the block at once.
	if _, err := e.admin.DeletePrivacyRule(ctx, &gatehousev1.DeletePrivacyRuleRequest{AccountId: "acme", Id: "no-pay"}); err != nil {
		t.Fatal(err)
	}
	if d := check(agent("alice"), gatehousev1.Feature_FEATURE_CLICK, shop, payButton); !d.GetAllowed() {
		t.Fatalf("after delete: %v", d)
	}
}
