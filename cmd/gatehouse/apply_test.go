package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDiffApplyDiff: a changed document shows its plan, is applied in one
// step guarded by the plan's revision, and then diff shows nothing.
func TestDiffApplyDiff(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.richAccount("acme")
	file := filepath.Join(t.TempDir(), "acme.yaml")
	ts.must("export", "-a", "acme", "-f", file)
	wantIn(t, ts.must("diff", "-f", file), "no changes: account acme matches the document")

	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, r := range [][2]string{
		{"  chat: true\n", "  chat: false\n"},
		{"  - id: site\n    pattern: example.com\n    description: main site\n", ""},
		{"    display_name: Carol\n", "    display_name: Caroline\n"},
	} {
		if !strings.Contains(doc, r[0]) {
			t.Fatalf("document lacks %q:\n%s", r[0], doc)
		}
		doc = strings.Replace(doc, r[0], r[1], 1)
	}
	doc = strings.Replace(doc, "privacy_rules:\n", "privacy_rules:\n  - id: card\n    kind: PRIVACY_RULE_KIND_DATA_MASK\n    selector: input.card-number\n", 1)
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}

	plan := ts.must("diff", "-f", file)
	wantIn(t, plan, "plan for account acme (planned at revision", "1 to create, 2 to update, 0 to delete",
		"\n~ settings/acme\n    chat: true → false\n",
		"\n+ privacy_rules/card\n", "    selector: \"input.card-number\"\n",
		"\n~ representatives/carol\n    display_name: \"Carol\" → \"Caroline\"\n",
		"kept (--prune deletes them):\n  allowlist/site\n")
	j := ts.mustJSON("diff", "-f", file, "--prune")
	rev, _ := strconv.ParseUint(field(j, "revision").(string), 10, 64)
	if rev == 0 || len(field(j, "changes").([]any)) != 4 {
		t.Fatalf("diff --prune -o json: %v", j)
	}

	// Someone changes the account after the review: the apply is refused.
	ts.must("settings", "update", "-a", "acme", "--set", "voice_chat=true")
	r := ts.mustFail(exitError, "apply", "-f", file, "--prune", "--expect-revision", strconv.FormatUint(rev, 10))
	wantIn(t, r.err, "ABORTED", "the account changed at revision")
	ts.must("settings", "update", "-a", "acme", "--set", "voice_chat=false")

	j = ts.mustJSON("diff", "-f", file, "--prune")
	out := ts.must("apply", "-f", file, "--prune", "--expect-revision", field(j, "revision").(string))
	wantIn(t, out, "- allowlist/site\n", "applied 4 change(s) to account acme at revision")
	wantIn(t, ts.must("diff", "-f", file, "--prune"), "no changes: account acme matches the document")
	wantIn(t, ts.must("apply", "-f", file), "no changes: account acme matches the document")
	wantIn(t, ts.must("privacy-rules", "get", "card", "-a", "acme"), "input.card-number")

	// A document the rules refuse names the field by its place in the
	// document and changes nothing.
	bad := strings.Replace(doc, "selector: input.card-number", "selector: 'a:hover'", 1)
	res := runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts.addr}, bad, "apply", "-f", "-")
	if res.code != exitError {
		t.Fatalf("bad apply: %+v", res)
	}
	wantIn(t, res.err, "INVALID_ARGUMENT", "document.privacy_rules[")
}
