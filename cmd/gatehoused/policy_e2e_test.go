package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const (
	demoDocument = "../../examples/policy/demo.yaml"
	demoTests    = "../../examples/policy/demo_test.yaml"
)

// decisionReport is what "gatehouse test -o json" prints.
type decisionReport struct {
	Account string `json:"account"`
	Passed  int    `json:"passed"`
	Failed  int    `json:"failed"`
	Results []struct {
		Name string   `json:"name"`
		Pass bool     `json:"pass"`
		Got  string   `json:"got"`
		Diff []string `json:"diff"`
	} `json:"results"`
}

// runGatehouse runs the admin CLI and returns its stdout, stderr and exit
// code.
func runGatehouse(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Env = environ()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// TestE2E_PolicyExamples: the committed demo document is what gatehoused
// --demo serves (diff shows nothing), and its decision tests pass both
// offline against the document and against the running daemon, with the
// same answer in every case.
func TestE2E_PolicyExamples(t *testing.T) {
	t.Parallel()
	d := start(t, nil, loopbackArgs(t.TempDir(), "--demo")...)

	out, errOut, code := runGatehouse(t, "--addr", d.addr, "diff", "-f", demoDocument, "--prune")
	if code != 0 || !strings.Contains(out, "no changes: account demo matches the document") {
		t.Fatalf("the demo daemon differs from %s (exit %d):\n%s%s", demoDocument, code, out, errOut)
	}

	report := func(args ...string) decisionReport {
		t.Helper()
		out, errOut, code := runGatehouse(t, append([]string{"test", "-f", demoTests, "-o", "json"}, args...)...)
		var r decisionReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("gatehouse test %v (exit %d): %v\n%s%s", args, code, err, out, errOut)
		}
		if code != 0 || r.Failed != 0 || r.Passed == 0 {
			t.Errorf("gatehouse test %v: exit %d, %d passed, %d failed:\n%s", args, code, r.Passed, r.Failed, out)
		}
		return r
	}
	offline := report("--policy", demoDocument)
	live := report("--server", d.addr, "--account", "demo")
	if len(offline.Results) != len(live.Results) {
		t.Fatalf("%d offline results, %d live", len(offline.Results), len(live.Results))
	}
	for i := range offline.Results {
		if o, l := offline.Results[i], live.Results[i]; o.Got != l.Got || o.Name != l.Name {
			t.Errorf("case %q: offline %q, live %q", o.Name, o.Got, l.Got)
		}
	}
}
