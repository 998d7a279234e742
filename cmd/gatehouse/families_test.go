package main

import (
	"slices"
	"strings"
	"testing"
)

// mustAccount creates account id on ts.
func (ts *testServer) mustAccount(id string) {
	ts.t.Helper()
	ts.must("accounts", "create", id, "--display-name", "Account "+id)
}

func TestAccounts_CRUD(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	out := ts.must("accounts", "create", "acme", "--display-name", "Acme")
	d := detail(out)
	if d["id"] != "acme" || d["display_name"] != "Acme" || d["etag"] == "" {
		t.Fatalf("create: %q", out)
	}
	ts.mustAccount("beta")
	list := ts.must("accounts", "list")
	if ids := tableColumn(t, list, "ID"); !slices.Equal(ids, []string{"acme", "beta"}) {
		t.Fatalf("list ids %v:\n%s", ids, list)
	}
	if got := tableColumn(t, list, "DISPLAY_NAME")[0]; got != "Acme" {
		t.Fatalf("display name column %q", got)
	}
	etag := detail(ts.must("accounts", "get", "acme"))["etag"]
	upd := detail(ts.must("accounts", "update", "acme", "--display-name", "Acme Corp", "--etag", etag))
	if upd["display_name"] != "Acme Corp" || upd["etag"] == etag {
		t.Fatalf("update: %v", upd)
	}
	// The etag read before the update is stale now.
	r := ts.mustFail(exitError, "accounts", "update", "acme", "--display-name", "Again", "--etag", etag)
	wantIn(t, r.err, "Error: ABORTED:", "reason: ETAG_MISMATCH (gatehouse.dev)", "current_etag: "+upd["etag"])
	// Only the fields given are sent: an update without any is refused locally.
	r = ts.mustFail(exitUsage, "accounts", "update", "acme")
	wantIn(t, r.err, "nothing to update", "--display-name")

	wantIn(t, ts.must("accounts", "delete", "beta", "--yes"), `deleted account "beta" at revision`)
	r = ts.mustFail(exitError, "accounts", "get", "beta")
	wantIn(t, r.err, "Error: NOT_FOUND:")
	if ids := tableColumn(t, ts.must("accounts", "list"), "ID"); !slices.Equal(ids, []string{"acme"}) {
		t.Fatalf("after delete: %v", ids)
	}
}

func TestAllowlist_CRUD(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	d := detail(ts.must("allowlist", "create", "site", "-a", "acme", "--pattern", "WWW.Example.COM.", "--description", "main site"))
	if d["pattern"] != "www.example.com" {
		t.Fatalf("pattern not normalized: %v", d)
	}
	gen := detail(ts.must("allowlist", "create", "--account", "acme", "--pattern", "*.example.org"))
	if gen["id"] == "" || gen["id"] == "-" {
		t.Fatalf("no generated id: %v", gen)
	}
	list := ts.must("allowlist", "list", "-a", "acme")
	wantIn(t, list, "ID", "PATTERN", "www.example.com", "*.example.org", "main site")

	// Updating the description leaves the pattern alone (mask: description).
	upd := detail(ts.must("allowlist", "update", "site", "-a", "acme", "--description", "new text"))
	if upd["description"] != "new text" || upd["pattern"] != "www.example.com" {
		t.Fatalf("update: %v", upd)
	}
	got := detail(ts.must("allowlist", "get", "site", "-a", "acme"))
	if got["description"] != "new text" {
		t.Fatalf("get after update: %v", got)
	}
	ts.must("allowlist", "delete", "site", "-a", "acme")
	ts.mustFail(exitError, "allowlist", "get", "site", "-a", "acme")
	if n := len(tableColumn(t, ts.must("allowlist", "list", "-a", "acme"), "ID")); n != 1 {
		t.Fatalf("%d entries after delete", n)
	}
	// Without --account (and GATEHOUSE_ACCOUNT) the command is refused.
	wantIn(t, ts.mustFail(exitUsage, "allowlist", "list").err, "needs --account")
}

func TestPrivacyRules_CRUD(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	d := detail(ts.must("privacy-rules", "create", "pay", "-a", "acme", "--kind", "button-block",
		"--selector", "form#checkout button.pay", "--url-pattern", "shop.example.com/checkout", "--description", "pay button"))
	if d["kind"] != "BUTTON_BLOCK" || d["selector"] != "form#checkout button.pay" {
		t.Fatalf("create: %v", d)
	}
	ts.must("privacy-rules", "create", "cvv", "-a", "acme", "--kind", "PRIVACY_RULE_KIND_DATA_MASK", "--selector", "input[name=cvv]")
	list := ts.must("privacy-rules", "list", "-a", "acme")
	if kinds := tableColumn(t, list, "KIND"); !slices.Equal(kinds, []string{"DATA_MASK", "BUTTON_BLOCK"}) {
		t.Fatalf("kinds %v:\n%s", kinds, list)
	}
	upd := detail(ts.must("privacy-rules", "update", "pay", "-a", "acme", "--kind", "data_mask"))
	if upd["kind"] != "DATA_MASK" || upd["selector"] != "form#checkout button.pay" || upd["url_pattern"] != "shop.example.com/checkout" {
		t.Fatalf("update: %v", upd)
	}
	wantIn(t, ts.mustFail(exitUsage, "privacy-rules", "create", "-a", "acme", "--kind", "hide").err, `"hide" is not one of button_block, data_mask`)
	r := ts.mustFail(exitError, "privacy-rules", "create", "-a", "acme", "--kind", "data_mask", "--selector", "a:hover")
	wantIn(t, r.err, "INVALID_ARGUMENT", "field rule.selector (--selector):")
	ts.must("privacy-rules", "delete", "cvv", "-a", "acme")
	ts.mustFail(exitError, "privacy-rules", "get", "cvv", "-a", "acme")
}

func TestPortals_CRUD(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	d := detail(ts.must("portals", "create", "helpdesk", "-a", "acme", "--name", "Help desk",
		"--function", "send_files=true", "--function", "receive-files", "--notification-email", "ops@example.com"))
	if d["functions"] != "send_files,receive_files" || d["notification_email"] != "ops@example.com" {
		t.Fatalf("create: %v", d)
	}
	ts.must("portals", "create", "helpdesk-eu", "-a", "acme", "--parent", "helpdesk", "--name", "EU", "--function", "all=true")
	list := ts.must("portals", "list", "-a", "acme")
	if ids := tableColumn(t, list, "ID"); !slices.Equal(ids, []string{"helpdesk", "helpdesk-default", "helpdesk-eu"}) {
		t.Fatalf("ids %v (a top portal comes with its default subportal):\n%s", ids, list)
	}
	wantIn(t, list, "all")

	// One function changes; the other stays on (mask functions.send_files).
	upd := detail(ts.must("portals", "update", "helpdesk", "-a", "acme", "--function", "send_files=false"))
	if upd["functions"] != "receive_files" || upd["name"] != "Help desk" {
		t.Fatalf("update: %v", upd)
	}
	upd = detail(ts.must("portals", "update", "helpdesk-eu", "-a", "acme", "--function", "annotations=false"))
	if upd["functions"] != "all but annotations" {
		t.Fatalf("functions %q", upd["functions"])
	}
	wantIn(t, ts.mustFail(exitUsage, "portals", "update", "helpdesk", "-a", "acme", "--function", "teleport=true").err, `no support function "teleport"`)

	// A portal a team serves is in use; so is the last subportal.
	ts.must("teams", "create", "eu-team", "-a", "acme", "--name", "EU team", "--portal", "helpdesk-eu")
	wantIn(t, ts.mustFail(exitError, "portals", "delete", "helpdesk", "-a", "acme").err, "FAILED_PRECONDITION", `team "eu-team"`)
	ts.must("portals", "delete", "helpdesk-default", "-a", "acme")
	ts.must("teams", "delete", "eu-team", "-a", "acme")
	wantIn(t, ts.mustFail(exitError, "portals", "delete", "helpdesk-eu", "-a", "acme").err, "FAILED_PRECONDITION")
	// Deleting a top portal takes its subportals with it.
	ts.must("portals", "delete", "helpdesk", "-a", "acme")
	ts.mustFail(exitError, "portals", "get", "helpdesk-eu", "-a", "acme")
}

func TestTeams_CRUD(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	ts.must("portals", "create", "helpdesk", "-a", "acme", "--name", "Help desk")
	ts.must("teams", "create", "tier1", "-a", "acme", "--name", "Tier 1", "--portal", "helpdesk-default")
	d := detail(ts.must("teams", "create", "tier1-night", "-a", "acme", "--name", "Night", "--parent", "tier1"))
	if d["parent_id"] != "tier1" || d["portal_id"] != "-" {
		t.Fatalf("subteam: %v", d)
	}
	list := ts.must("teams", "list", "-a", "acme")
	if parents := tableColumn(t, list, "PARENT_ID"); !slices.Equal(parents, []string{"-", "tier1"}) {
		t.Fatalf("parents %v\n%s", parents, list)
	}
	upd := detail(ts.must("teams", "update", "tier1-night", "-a", "acme", "--portal", "helpdesk"))
	if upd["portal_id"] != "helpdesk" || upd["name"] != "Night" || upd["parent_id"] != "tier1" {
		t.Fatalf("update: %v", upd)
	}
	wantIn(t, ts.mustFail(exitError, "teams", "delete", "tier1", "-a", "acme").err, "FAILED_PRECONDITION")
	ts.must("teams", "delete", "tier1-night", "-a", "acme")
	ts.must("teams", "delete", "tier1", "-a", "acme")
	ts.mustFail(exitError, "teams", "get", "tier1", "-a", "acme")
}

func TestRepresentatives_CRUD(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	ts.must("teams", "create", "tier1", "-a", "acme", "--name", "Tier 1")
	d := detail(ts.must("representatives", "create", "alice", "-a", "acme", "--display-name", "Alice",
		"--team", "tier1", "--function", "send_files=true", "--function", "annotations", "--live-guide"))
	if d["functions"] != "send_files,annotations" || d["live_guide_enabled"] != "true" || d["team_id"] != "tier1" {
		t.Fatalf("create: %v", d)
	}
	ts.must("reps", "create", "bob", "-a", "acme", "--display-name", "Bob")
	list := ts.must("representatives", "list", "-a", "acme")
	if lg := tableColumn(t, list, "LIVE_GUIDE_ENABLED"); !slices.Equal(lg, []string{"true", "false"}) {
		t.Fatalf("live guide column %v\n%s", lg, list)
	}
	upd := detail(ts.must("representatives", "update", "alice", "-a", "acme", "--function", "send_files=false", "--live-guide=false"))
	if upd["functions"] != "annotations" || upd["live_guide_enabled"] != "false" || upd["display_name"] != "Alice" {
		t.Fatalf("update: %v", upd)
	}
	upd = detail(ts.must("representatives", "update", "alice", "-a", "acme", "--team", ""))
	if upd["team_id"] != "-" || upd["functions"] != "annotations" {
		t.Fatalf("clearing the team: %v", upd)
	}
	ts.must("representatives", "delete", "bob", "-a", "acme")
	ts.mustFail(exitError, "representatives", "get", "bob", "-a", "acme")
}

func TestBusinessHours_CRUD(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	out := ts.must("business-hours", "create", "office", "-a", "acme", "--name", "Office", "--time-zone", "Europe/Berlin",
		"--window", "mon-fri 09:00-17:00", "--window", "sat 10:00-14:00",
		"--holiday", "2026-12-25 closed Christmas Day", "--holiday", "2026-12-24 09:00-12:00 Christmas Eve")
	wantIn(t, out, "weekly     mon 09:00-17:00\n", "           fri 09:00-17:00\n", "           sat 10:00-14:00\n",
		"holidays   2026-12-25 closed Christmas Day\n", "           2026-12-24 09:00-12:00 Christmas Eve\n")
	list := ts.must("business-hours", "list", "-a", "acme")
	wantIn(t, list, "6 windows", "2 holidays", "Europe/Berlin")

	j := ts.mustJSON("business-hours", "get", "office", "-a", "acme")
	weekly := j["weekly"].([]any)
	if len(weekly) != 6 || field(weekly[0].(map[string]any), "day") != "WEEKDAY_MONDAY" {
		t.Fatalf("weekly %v", weekly)
	}

	// --holiday none empties the holidays and leaves the windows alone.
	upd := ts.mustJSON("business-hours", "update", "office", "-a", "acme", "--holiday", "none")
	if upd["holidays"] != nil || len(upd["weekly"].([]any)) != 6 {
		t.Fatalf("update holidays none: %v", upd)
	}
	upd = ts.mustJSON("business-hours", "update", "office", "-a", "acme", "--window", "sat,sun 22:00-02:00")
	if w := upd["weekly"].([]any); len(w) != 2 || field(w[1].(map[string]any), "day") != "WEEKDAY_SUNDAY" {
		t.Fatalf("update windows: %v", upd["weekly"])
	}
	r := ts.mustFail(exitUsage, "business-hours", "create", "x", "-a", "acme", "--window", "someday 09:00-17:00")
	wantIn(t, r.err, `"someday" is not a weekday`)
	r = ts.mustFail(exitError, "business-hours", "create", "x", "-a", "acme", "--name", "X", "--time-zone", "Mars/Olympus")
	wantIn(t, r.err, "INVALID_ARGUMENT", "field business_hours.time_zone")

	// Hours assigned to a portal are in use.
	ts.must("portals", "create", "helpdesk", "-a", "acme", "--name", "Help desk", "--business-hours", "office")
	wantIn(t, ts.mustFail(exitError, "business-hours", "delete", "office", "-a", "acme").err, "FAILED_PRECONDITION")
	ts.must("portals", "update", "helpdesk", "-a", "acme", "--business-hours", "")
	ts.must("business-hours", "delete", "office", "-a", "acme")
}

func TestSettings_GetUpdate(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	before := detail(ts.must("settings", "get", "-a", "acme"))
	if before["clipboard_agent"] != "true" || before["agent_click_restricted"] != "false" {
		t.Fatalf("defaults: %v", before)
	}
	after := detail(ts.must("settings", "update", "-a", "acme", "--set", "agent_click_restricted=true",
		"--set", "session_start_url=https://www.example.com/start", "--set", "clipboard_agent=false"))
	if after["agent_click_restricted"] != "true" || after["clipboard_agent"] != "false" || after["session_start_url"] != "https://www.example.com/start" {
		t.Fatalf("update: %v", after)
	}
	// Fields not named by --set are untouched.
	if after["show_disclaimer"] != before["show_disclaimer"] || after["clipboard_customer"] != "true" {
		t.Fatalf("untouched fields changed: %v", after)
	}
	wantIn(t, ts.mustFail(exitUsage, "settings", "update", "-a", "acme", "--set", "teleport=true").err, `no setting "teleport"`, "agent_click_restricted")
	wantIn(t, ts.mustFail(exitUsage, "settings", "update", "-a", "acme", "--set", "chat=maybe").err, "chat takes true or false")
	wantIn(t, ts.mustFail(exitUsage, "settings", "update", "-a", "acme", "--set", "etag=1").err, `no setting "etag"`)
	wantIn(t, ts.mustFail(exitError, "settings", "update", "-a", "acme", "--set", "chat=true", "--etag", before["etag"]).err, "ABORTED")
	ok := detail(ts.must("settings", "update", "-a", "acme", "--set", "chat=true", "--etag", after["etag"]))
	if ok["chat"] != "true" {
		t.Fatalf("update with current etag: %v", ok)
	}
}

func TestCustomization_GetListUpdate(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	def := detail(ts.must("customization", "get", "-a", "acme", "--language", "fr"))
	if def["language"] != "fr" || def["revision"] != "-" {
		t.Fatalf("defaults: %v", def)
	}
	upd := detail(ts.must("customization", "update", "-a", "acme", "-l", "fr", "--agent-alias", "Conseiller"))
	if upd["agent_alias"] != "Conseiller" || upd["disclaimer_text"] != def["disclaimer_text"] || upd["customer_alias"] != def["customer_alias"] {
		t.Fatalf("update: %v (defaults %v)", upd, def)
	}
	// fr-CA is negotiated to fr.
	if got := detail(ts.must("customization", "get", "-a", "acme", "-l", "fr-CA"))["agent_alias"]; got != "Conseiller" {
		t.Fatalf("fr-CA agent alias %q", got)
	}
	list := ts.must("customization", "list", "-a", "acme")
	if langs := tableColumn(t, list, "LANGUAGE"); !slices.Equal(langs, languages) {
		t.Fatalf("languages %v", langs)
	}
	var all []map[string]any
	mustDecodeJSON(t, ts.must("customization", "list", "-a", "acme", "--output", "json"), &all)
	if len(all) != 7 || all[1]["agent_alias"] != "Conseiller" {
		t.Fatalf("json list: %v", all)
	}
	wantIn(t, ts.mustFail(exitUsage, "customization", "update", "-a", "acme", "--agent-alias", "x").err, `required flag(s) "language" not set`)
	// A write names one of the seven languages exactly: refused before it is sent.
	wantIn(t, ts.mustFail(exitUsage, "customization", "update", "-a", "acme", "-l", "fr-CA", "--agent-alias", "x").err, `did you mean "fr"?`)
}

func TestCobrowseURL_GenerateSetGet(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	if got := strings.TrimSpace(ts.must("cobrowse-url", "get", "-a", "acme")); got != "-" {
		t.Fatalf("before generate: %q", got)
	}
	url := strings.TrimSpace(ts.must("cobrowse-url", "generate", "-a", "acme"))
	if !strings.HasPrefix(url, "https://") || !strings.HasSuffix(url, ".support.me") {
		t.Fatalf("generated %q", url)
	}
	wantIn(t, ts.mustFail(exitError, "cobrowse-url", "generate", "-a", "acme").err, "FAILED_PRECONDITION", "reason: COBROWSE_URL_ALREADY_SET")
	if got := strings.TrimSpace(ts.must("cobrowse-url", "get", "-a", "acme")); got != url {
		t.Fatalf("get %q, want %q", got, url)
	}
	if got := strings.TrimSpace(ts.must("cobrowse-url", "set", "-a", "acme", "https://acme-help.support.me")); got != "https://acme-help.support.me" {
		t.Fatalf("set: %q", got)
	}
	if got := field(ts.mustJSON("accounts", "get", "acme"), "cobrowse_url"); got != "https://acme-help.support.me" {
		t.Fatalf("account after set: %v", got)
	}
}

func TestList_LimitAndPageToken(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	for _, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
		ts.mustAccount(id)
	}
	r := ts.run("accounts", "list", "--limit", "2")
	if ids := tableColumn(t, r.out, "ID"); !slices.Equal(ids, []string{"a1", "a2"}) {
		t.Fatalf("limit 2: %v", ids)
	}
	wantIn(t, r.err, "--page-token")
	j := ts.mustJSON("accounts", "list", "--limit", "2")
	token, _ := j["next_page_token"].(string)
	if token == "" {
		t.Fatalf("no next_page_token: %v", j)
	}
	rest := ts.must("accounts", "list", "--page-token", token)
	if ids := tableColumn(t, rest, "ID"); !slices.Equal(ids, []string{"a3", "a4", "a5"}) {
		t.Fatalf("rest: %v", ids)
	}
}
