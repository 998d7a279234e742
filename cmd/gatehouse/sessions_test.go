package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func mustDecodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
}

// liveGuideAccount creates acme with a Live Guide representative alice
// and starts a session for her; it returns the session id.
func (ts *testServer) liveGuideAccount() string {
	ts.t.Helper()
	ts.mustAccount("acme")
	ts.must("representatives", "create", "alice", "-a", "acme", "--display-name", "Alice", "--live-guide")
	return field(ts.mustJSON("sessions", "start", "-a", "acme", "--kind", "live_guide", "--rep", "alice", "--customer", "cust-1"), "id").(string)
}

func TestOutput_Formats(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	ts.must("portals", "create", "helpdesk", "-a", "acme", "--name", "Help desk", "--function", "send_files")

	table := ts.must("portals", "get", "helpdesk", "-a", "acme")
	wantIn(t, table, "id                  helpdesk\n", "functions           send_files\n")

	// json is protojson with proto field names; yaml is the same document.
	j := ts.must("portals", "get", "helpdesk", "-a", "acme", "--output", "json")
	var fromJSON map[string]any
	mustDecodeJSON(t, j, &fromJSON)
	if fromJSON["parent_id"] != nil || field(fromJSON, "functions.send_files") != true || fromJSON["business_hours_id"] != nil {
		t.Fatalf("json: %v", fromJSON)
	}
	if !strings.HasPrefix(j, "{\n  \"id\": \"helpdesk\",\n") {
		t.Fatalf("json not indented by two spaces:\n%s", j)
	}
	y := ts.must("portals", "get", "helpdesk", "-a", "acme", "--output", "yaml")
	var fromYAML map[string]any
	if err := yaml.Unmarshal([]byte(y), &fromYAML); err != nil {
		t.Fatalf("yaml does not parse: %v\n%s", err, y)
	}
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		t.Fatalf("yaml and json differ:\n%v\n%v", fromJSON, fromYAML)
	}

	// Lists: the response message with every page merged.
	var list map[string]any
	mustDecodeJSON(t, ts.must("portals", "list", "-a", "acme", "--output", "json"), &list)
	if ps := list["portals"].([]any); len(ps) != 2 {
		t.Fatalf("json list: %v", list)
	}
	var ylist map[string][]map[string]any
	if err := yaml.Unmarshal([]byte(ts.must("portals", "list", "-a", "acme", "--output", "yaml")), &ylist); err != nil || len(ylist["portals"]) != 2 {
		t.Fatalf("yaml list: %v %v", err, ylist)
	}

	// GATEHOUSE_OUTPUT sets the default; the flag wins.
	env := map[string]string{"GATEHOUSE_ADDR": ts.addr, "GATEHOUSE_OUTPUT": "yaml"}
	if r := runCLI(t, env, "", "accounts", "get", "acme"); !strings.HasPrefix(r.out, "id: acme\n") {
		t.Fatalf("GATEHOUSE_OUTPUT=yaml: %q %q", r.out, r.err)
	}
	if r := runCLI(t, env, "", "accounts", "get", "acme", "--output", "table"); !strings.HasPrefix(r.out, "id ") {
		t.Fatalf("--output table over the env: %q", r.out)
	}
	wantIn(t, ts.mustFail(exitUsage, "accounts", "list", "--output", "xml").err, `--output "xml": want one of table, json, yaml`)
}

func TestYAML_QuotesWhatWouldReadBackAsAnotherType(t *testing.T) {
	t.Parallel()
	y, err := yamlFromJSON([]byte(`{"a":"10:00","b":"2026-12-25","c":"true","d":"yes","e":"12","f":"plain","g":"line 1\nline 2"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := "a: \"10:00\"\nb: \"2026-12-25\"\nc: \"true\"\nd: \"yes\"\ne: \"12\"\nf: plain\ng: |-\n  line 1\n  line 2\n"
	if string(y) != want {
		t.Fatalf("got\n%s\nwant\n%s", y, want)
	}
}

func TestCheck_Decisions(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	sid := ts.liveGuideAccount()
	base := []string{"check", "--session", sid, "--role", "agent", "--actor", "alice"}

	out := ts.must(append(base, "--feature", "click", "--url", "https://www.example.com/")...)
	d := detail(out)
	if d["allowed"] != "true" || d["reason"] != "ALLOWED" {
		t.Fatalf("allowed: %v", d)
	}
	wantIn(t, out, "allowed: nothing denies click to agent alice")

	ts.must("settings", "update", "-a", "acme", "--set", "agent_click_restricted=true")
	out = ts.must(append(base, "--feature", "FEATURE_CLICK", "--url", "https://www.example.com/")...)
	d = detail(out)
	if d["allowed"] != "false" || d["reason"] != "AGENT_CLICK_RESTRICTED" || d["rule"] != "agent_click_restricted" {
		t.Fatalf("restricted: %v", d)
	}
	wantIn(t, out, "denied: the account's setting agent_click_restricted is on", "--set agent_click_restricted=false")
	ts.must("settings", "update", "-a", "acme", "--set", "agent_click_restricted=false")

	// Privacy rules match the element and its ancestors.
	ts.must("privacy-rules", "create", "pay", "-a", "acme", "--kind", "button_block", "--selector", "form#checkout > button.pay")
	el := `html > body > form#checkout.wide[data-step="2"] > button.pay.primary#go[name=pay]`
	out = ts.must(append(base, "--feature", "click", "--url", "https://shop.example.com/", "--element", el)...)
	if d := detail(out); d["reason"] != "ELEMENT_BLOCKED" || d["rule"] != "pay" {
		t.Fatalf("element: %v\n%s", d, out)
	}
	wantIn(t, out, `privacy rule pay (button block) matches button#go.pay.primary[name="pay"]`)
	out = ts.must(append(base, "--feature", "click", "--url", "https://shop.example.com/", "--element", "body > div#checkout > button.pay")...)
	if d := detail(out); d["reason"] != "ALLOWED" {
		t.Fatalf("other ancestors: %v", d)
	}

	// Allowlist, iframes, json output.
	ts.must("allowlist", "create", "site", "-a", "acme", "--pattern", "example.com")
	j := ts.mustJSON(append(base, "--feature", "navigate", "--url", "https://evil.example.net/")...)
	if field(j, "decision.reason") != "REASON_DOMAIN_NOT_ALLOWLISTED" || field(j, "decision.allowed") != nil || field(j, "revision") == nil {
		t.Fatalf("json: %v", j)
	}
	j = ts.mustJSON(append(base, "--feature", "navigate", "--url", "https://evil.example.net/", "--frame", "iframe")...)
	if field(j, "decision.allowed") != true {
		t.Fatalf("iframe navigation is exempt: %v", j)
	}
	out = ts.must("check", "--session", sid, "--role", "customer", "--actor", "someone-else", "--feature", "chat")
	wantIn(t, out, "ACTOR_NOT_IN_SESSION", "denied: customer someone-else is not a participant")

	// Bad input: locally (exit 2) and by the server (exit 1).
	wantIn(t, ts.mustFail(exitUsage, append(base, "--feature", "teleport")...).err, `--feature: "teleport" is not one of navigate, click`)
	wantIn(t, ts.mustFail(exitUsage, append(base, "--feature", "click", "--element", "button[name=x")...).err, "--element")
	wantIn(t, ts.mustFail(exitUsage, "check", "--session", sid).err, "required flag(s)")
	wantIn(t, ts.mustFail(exitError, "check", "--session", "s-nope", "--role", "agent", "--actor", "alice", "--feature", "chat").err, "Error: NOT_FOUND:")
}

func TestSessions_Lifecycle(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	ts.must("portals", "create", "helpdesk", "-a", "acme", "--name", "Help desk", "--function", "all")
	ts.must("teams", "create", "tier1", "-a", "acme", "--name", "Tier 1", "--portal", "helpdesk-default")
	ts.must("representatives", "create", "alice", "-a", "acme", "--display-name", "Alice", "--team", "tier1",
		"--function", "invite_external_specialist", "--function", "send_files")
	ts.must("representatives", "create", "bob", "-a", "acme", "--display-name", "Bob")

	out := ts.must("sessions", "start", "-a", "acme", "--kind", "support", "--rep", "alice", "--customer", "cust-2", "--portal", "helpdesk-default")
	s := detail(out)
	if s["kind"] != "SUPPORT" || s["state"] != "ACTIVE" || s["portal_id"] != "helpdesk-default" {
		t.Fatalf("start: %v", s)
	}
	sid := s["id"]
	if got := detail(ts.must("sessions", "get", sid)); got["representative_id"] != "alice" {
		t.Fatalf("get: %v", got)
	}
	inv := ts.must("sessions", "invite-specialist", sid, "--specialist", "sam", "--display-name", "Sam Expert")
	wantIn(t, inv, "specialist_ids         sam\n", "specialists            sam (Sam Expert)\n")
	if d := detail(ts.must("check", "--session", sid, "--role", "external_specialist", "--actor", "sam", "--feature", "send_files")); d["allowed"] != "true" {
		t.Fatalf("specialist check: %v", d)
	}
	if d := detail(ts.must("check", "--session", sid, "--role", "agent", "--actor", "alice", "--feature", "annotations")); d["reason"] != "REPRESENTATIVE_FUNCTION_DISABLED" {
		t.Fatalf("rep function: %v", d)
	}
	if got := detail(ts.must("sessions", "remove-specialist", sid, "--specialist", "sam")); got["specialist_ids"] != "-" {
		t.Fatalf("remove: %v", got)
	}
	end := detail(ts.must("sessions", "end", sid, "--customer-rating", "5", "--rep-rating", "4"))
	if end["state"] != "ENDED" || end["customer_rating"] != "5" || end["representative_rating"] != "4" || end["end_time"] == "-" {
		t.Fatalf("end: %v", end)
	}
	out = ts.must("check", "--session", sid, "--role", "agent", "--actor", "alice", "--feature", "send_files")
	wantIn(t, out, "SESSION_ENDED", "denied: session "+sid+" has ended")
	wantIn(t, ts.mustFail(exitError, "sessions", "end", sid).err, "FAILED_PRECONDITION")

	// Refusals carry an ErrorInfo reason.
	r := ts.mustFail(exitError, "sessions", "start", "-a", "acme", "--kind", "live-guide", "--rep", "bob", "--customer", "cust-1")
	wantIn(t, r.err, "Error: FAILED_PRECONDITION:", "reason: REP_NOT_ALLOWED (gatehouse.dev)")
	wantIn(t, ts.mustFail(exitUsage, "sessions", "start", "-a", "acme", "--kind", "chat", "--rep", "bob").err, `--kind: "chat" is not one of live_guide, support`)
}
