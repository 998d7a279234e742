package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	exampleDocument = "../../examples/policy/demo.yaml"
	exampleTests    = "../../examples/policy/demo_test.yaml"
)

// TestDecisionTests_OfflineAndLive: the example tests pass offline; a
// failing case exits 1 with its diff and JUnit XML; against a live account
// applied from the same document the same table comes out.
func TestDecisionTests_OfflineAndLive(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	offline := ts.must("test", "-f", exampleTests, "--policy", exampleDocument)
	wantIn(t, offline, "PASS    agents cannot click the transfer button", " passed, 0 failed (account demo")

	b, err := os.ReadFile(exampleTests)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), "expect: {allowed: false, reason: ELEMENT_BLOCKED, rule: transfer}", "expect: {allowed: true}", 1)
	dir := t.TempDir()
	badFile, junit := filepath.Join(dir, "bad_test.yaml"), filepath.Join(dir, "report.xml")
	if err := os.WriteFile(badFile, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	r := ts.mustFail(exitError, "test", "-f", badFile, "--policy", exampleDocument, "--junit", junit)
	wantIn(t, r.out, "FAIL    agents cannot click the transfer button", "allowed: want true, got false", " passed, 1 failed")
	x, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	wantIn(t, string(x), `<testsuite name="bad_test" tests="`, `failures="1"`, `<failure message="allowed: want true, got false"`)

	// The same document applied to a live account answers the same.
	ts.must("apply", "-f", exampleDocument)
	live := ts.must("test", "-f", exampleTests, "--account", "demo")
	cut := func(s string) string { return s[:strings.LastIndex(s, "revision")] }
	if cut(live) != cut(offline) {
		t.Fatalf("live and offline runs differ:\n%s\n%s", offline, live)
	}
	r = ts.mustFail(exitUsage, "test", "-f", exampleTests, "--policy", exampleDocument, "--account", "demo")
	wantIn(t, r.err, "--policy runs offline")
	r = ts.mustFail(exitError, "test", "-f", exampleTests, "--account", "nope")
	wantIn(t, r.err, "is about account \"demo\", not \"nope\"")
}
