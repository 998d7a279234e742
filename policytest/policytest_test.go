package policytest_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/policytest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func document() *gatehousev1.AccountDocument {
	return &gatehousev1.AccountDocument{
		Format:          "gatehouse.account/v1",
		Account:         &gatehousev1.Account{Id: "acme", DisplayName: "Acme", CobrowseUrl: "https://acme.elsewhere.example"},
		Settings:        &gatehousev1.LiveGuideSettings{AgentClickRestricted: true, ClipboardAgent: true, ClipboardCustomer: true, ShowDisclaimer: true},
		Allowlist:       []*gatehousev1.AllowlistEntry{{Id: "shop", Pattern: "shop.example.com"}},
		PrivacyRules:    []*gatehousev1.PrivacyRule{{Id: "pay", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: "#pay"}},
		Representatives: []*gatehousev1.Representative{{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}},
	}
}

const cases = `
sessions:
  s: {kind: live_guide, representative: alice}
cases:
  - name: agents do not click
    session: s
    actor: agent
    feature: CLICK
    url: https://shop.example.com/
    expect: {allowed: false, reason: agent_click_restricted, rule: agent_click_restricted}
  - name: customers pay
    session: s
    actor: customer
    feature: click
    url: https://shop.example.com/checkout
    element: {tag: button, id: pay}
    expect: {allowed: true}
  - name: wrong on purpose
    session: s
    actor: customer
    feature: navigate
    url: https://other.example.org/
    expect: {allowed: true, reason: ALLOWED}
`

func TestOffline_RunsCasesWithTheServersRules(t *testing.T) {
	ctx := context.Background()
	f, err := policytest.Parse([]byte(cases))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policytest.Offline(ctx, document())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := policytest.Run(ctx, f, eng.Account, eng.Check)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed != 2 || rep.Failed != 1 || rep.Results[2].Pass || eng.Revision == 0 {
		t.Fatalf("report %+v", rep)
	}
	if d := rep.Results[2].Diff; len(d) != 2 || d[0] != "allowed: want true, got false" || d[1] != "reason: want ALLOWED, got DOMAIN_NOT_ALLOWLISTED" {
		t.Errorf("diff %q", d)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PASS    agents do not click", "FAIL    wrong on purpose", "reason: want ALLOWED, got DOMAIN_NOT_ALLOWLISTED", "3 cases: 2 passed, 1 failed (account acme"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var junit bytes.Buffer
	if err := rep.WriteJUnit(&junit, "acme"); err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name    string    `xml:"name,attr"`
			Failure *struct{} `xml:"failure"`
		} `xml:"testcase"`
	}
	if err := xml.Unmarshal(junit.Bytes(), &suite); err != nil {
		t.Fatal(err)
	}
	if suite.Tests != 3 || suite.Failures != 1 || suite.Cases[2].Failure == nil || suite.Cases[0].Failure != nil {
		t.Errorf("junit: %+v\n%s", suite, junit.String())
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}

// A document the server's rules refuse is refused offline with the same
// error, naming the document's field.
func TestOffline_RefusesWhatTheServerRefuses(t *testing.T) {
	for name, edit := range map[string]func(d *gatehousev1.AccountDocument){
		"public suffix":  func(d *gatehousev1.AccountDocument) { d.Allowlist[0].Pattern = "co.uk" },
		"hover selector": func(d *gatehousev1.AccountDocument) { d.PrivacyRules[0].Selector = "a:hover" },
		"unknown team":   func(d *gatehousev1.AccountDocument) { d.Representatives[0].TeamId = "nope" },
	} {
		d := document()
		edit(d)
		eng, err := policytest.Offline(context.Background(), d)
		if err == nil {
			eng.Close()
			t.Errorf("%s: accepted", name)
			continue
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "document.") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParse_RefusesWhatItCannotRun(t *testing.T) {
	for name, c := range map[string]struct{ file, want string }{
		"unknown key":     {"sessions: {s: {kind: support, representative: a}}\ncases: [{session: s, actor: agent, feature: chat, expect: {allowed: true}, colour: red}]", "colour"},
		"unknown feature": {"sessions: {s: {kind: live_guide, representative: a}}\ncases: [{session: s, actor: agent, feature: fly, expect: {allowed: true}}]", `feature "fly"`},
		"unknown reason":  {"sessions: {s: {kind: live_guide, representative: a}}\ncases: [{session: s, actor: agent, feature: chat, expect: {reason: NOPE}}]", `expect.reason "NOPE"`},
		"no session":      {"sessions: {s: {kind: live_guide, representative: a}}\ncases: [{session: t, actor: agent, feature: chat, expect: {allowed: true}}]", `session "t" is not among sessions (s)`},
		"no expectation":  {"sessions: {s: {kind: live_guide, representative: a}}\ncases: [{session: s, actor: agent, feature: chat}]", "expect needs allowed or reason"},
		"bad kind":        {"sessions: {s: {kind: phone, representative: a}}\ncases: [{session: s, actor: agent, feature: chat, expect: {allowed: true}}]", `kind "phone"`},
		"no cases":        {"sessions: {s: {kind: live_guide, representative: a}}\n", "no cases"},
		"wrong format":    {"format: x\ncases: []", `format "x"`},
	} {
		_, err := policytest.Parse([]byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	// The example file parses.
	b, err := os.ReadFile("../examples/policy/demo_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policytest.Parse(b); err != nil {
		t.Fatal(err)
	}
}
