package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/loadgen"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

// TestMain lets the test binary act as the bare-server and probe children
// that run starts (it re-executes its own binary).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "bare-server" || os.Args[1] == "probe") {
		child := bareServer
		if os.Args[1] == "probe" {
			child = probeCommand
		}
		if err := child(context.Background(), os.Args[2:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runTool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, args, &out, &errOut)
	if err != nil {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), err
}

// TestSmoke generates a tiny store, measures it through a server started
// in-process for about two seconds, then measures snapshot reflection.
func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	out, err := runTool(t, "gendata", "-data-dir", dir, "-scale", "tiny")
	if err != nil || !strings.Contains(out, "3 accounts; 30 allowlist entries") {
		t.Fatalf("gendata: %v\n%s", err, out)
	}
	if out, err := runTool(t, "gendata", "-data-dir", dir, "-scale", "tiny"); err != nil || !strings.Contains(out, "reusing") || !strings.Contains(out, "re-stamped") {
		t.Fatalf("second gendata: %v\n%s", err, out)
	}
	if _, err := runTool(t, "gendata", "-data-dir", dir, "-scale", "small"); err == nil || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("gendata over another scale: %v", err)
	}

	reportPath := filepath.Join(dir, "report.json")
	out, err = runTool(t, "run", "-inprocess", dir, "-duration", "3s", "-concurrency", "1,4", "-rounds", "1",
		"-writes", "2", "-batch", "10", "-batch-concurrency", "2", "-json", reportPath, "-fail-on-miss=false",
		"-overload", "2,20", "-overload-phase", "300ms", "-overload-rounds", "1")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, want := range []string{"Health", "bare Health", "Health/bare", "CheckFeature/bare", "bare CheckFeature", "bare CF/bare Health", "CheckFeature/bare CF", "CheckFeatures x10", "ratio",
		"UpdateLiveGuideSettings", "CreateAllowlistEntry", "overload:", "probe callers:", "targets:"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	var rep report
	b, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Comparisons) != 2 || rep.Comparisons[1].Subject.Calls == 0 || rep.Batch.Subject.DecisionsPerSec <= 0 || len(rep.Writes) != 6 {
		t.Fatalf("JSON report incomplete: %+v", rep)
	}
	if bc := rep.Comparisons[1].BareCheck; bc == nil || bc.Calls == 0 || bc.Errors > 0 || rep.Comparisons[1].SubjectCPURatioBareCheck <= 0 {
		t.Fatalf("JSON report lacks the bare server's CheckFeature: %+v", rep.Comparisons[1])
	}
	if b := rep.Comparisons[1].Bare; b == nil || b.Calls == 0 || b.CPUPerCallUS <= 0 || rep.Overload == nil || len(rep.Overload.Rows) != 2 {
		t.Fatalf("JSON report lacks the bare server or overload rows: %+v", rep)
	}
	// The probe callers, a process of their own, answered at every
	// number of load callers, every answer verified, and the verdict is
	// the last line.
	for _, r := range rep.Overload.Rows {
		if r.Probe == nil || r.Probe.Answered == 0 || r.Probe.Errors > 0 {
			t.Errorf("overload at %d callers: probes %+v", r.Concurrency, r.Probe)
		}
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); !strings.HasPrefix(lines[len(lines)-1], "PASS: ") && !strings.HasPrefix(lines[len(lines)-1], "FAIL: ") {
		t.Errorf("the report's last line is %q, want a PASS or FAIL verdict", lines[len(lines)-1])
	}

	out, err = runTool(t, "reflect", "-data-dir", dir, "-writes", "2")
	if err != nil || !strings.Contains(out, "rebuilds one account") || !strings.Contains(out, "1/3") {
		t.Fatalf("reflect: %v\n%s", err, out)
	}
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8470", true},
		{"127.9.9.9:1", true},
		{"[::1]:8470", true},
		{"10.0.0.1:8470", false},
		{"0.0.0.0:8470", false},
		{"192.0.2.1:8470", false},
		{"example.com:8470", false},
		{"8470", false},
	} {
		if err := checkLoopback(tc.addr); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v", tc.addr, err)
		}
	}
	if _, err := runTool(t, "run", "-addr", "10.1.2.3:8470"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("run against a remote address: %v", err)
	}
}

func TestParseInts(t *testing.T) {
	t.Parallel()
	got, err := parseInts("1, 16,50")
	if err != nil || len(got) != 3 || got[2] != 50 {
		t.Fatalf("parseInts = %v, %v", got, err)
	}
	if _, err := parseInts("1,x"); err == nil {
		t.Fatal("parseInts accepted x")
	}
}

// TestRun_WrongAnswerFails: a store changed after gendata (agent clicks
// and typing restricted in every account) makes run fail at once, printing
// the request and both answers.
func TestRun_WrongAnswerFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := runTool(t, "gendata", "-data-dir", dir, "-scale", "tiny"); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Update(context.Background(), func(tx store.Tx) error {
		for i := range 3 {
			s, err := store.GetSettings(tx, loadgen.AccountID(i))
			if err != nil {
				return err
			}
			s.AgentClickRestricted, s.AgentInputRestricted = !s.AgentClickRestricted, !s.AgentInputRestricted
			if err := store.PutSettings(tx, &s); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	wantRunFails(t, "run against a changed store",
		[]string{"run", "-inprocess", dir, "-duration", "3s", "-concurrency", "4", "-rounds", "1", "-writes", "0",
			"-batch", "10", "-batch-concurrency", "2", "-bare=false"},
		"unexpectedly", "request:", "want:", "got:", "RESTRICTED")
}

// wantRunFails runs the tool with args and checks that it fails with an
// error that says every part of want.
func wantRunFails(t *testing.T, what string, args []string, want ...string) {
	t.Helper()
	out, err := runTool(t, args...)
	if err == nil {
		t.Fatalf("%s succeeded:\n%s", what, out)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}

// TestGendata_StaleStoreIsGeneratedAgain: a store whose sessions a daemon
// has ended is not reused as it is but generated again, and run then
// measures live sessions.
func TestGendata_StaleStoreIsGeneratedAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := runTool(t, "gendata", "-data-dir", dir, "-scale", "tiny"); err != nil {
		t.Fatal(err)
	}
	// End every session, as a sweeper would a day later.
	st, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ended := 0
	_, err = st.Update(context.Background(), func(tx store.Tx) error {
		for i := range 3 {
			_, sessions, err := store.LoadAccount(tx, loadgen.AccountID(i), true)
			if err != nil {
				return err
			}
			for _, s := range sessions {
				s.State = policy.SessionStateEnded
				s.EndTime = time.Now()
				if err := store.PutSession(tx, &s); err != nil {
					return err
				}
				ended++
			}
		}
		return nil
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil || ended == 0 {
		t.Fatalf("ending %d sessions: %v", ended, err)
	}
	out, err := runTool(t, "gendata", "-data-dir", dir, "-scale", "tiny")
	if err != nil || !strings.Contains(out, "cannot be reused") || !strings.Contains(out, "3 accounts") {
		t.Fatalf("gendata over a stale store: %v\n%s", err, out)
	}
	if _, err := runTool(t, "run", "-inprocess", dir, "-duration", "2s", "-concurrency", "2", "-rounds", "1", "-writes", "0",
		"-batch", "10", "-batch-concurrency", "2", "-bare=false", "-fail-on-miss=false"); err != nil {
		t.Fatalf("run after regenerating: %v", err)
	}
}

func TestMissedTargets(t *testing.T) {
	t.Parallel()
	r := &report{Targets: []target{{Name: "a", Value: "1", Met: true}, {Name: "b", Value: "2x", Met: false}}}
	if err := missedTargets(r); err == nil || !strings.Contains(err.Error(), "b (2x)") {
		t.Fatalf("missedTargets = %v", err)
	}
	r.Targets[1].Met = true
	if err := missedTargets(r); err != nil {
		t.Fatal(err)
	}
}

// TestRun_WriteErrorFails: an unexpected error in the write phase fails
// the run, naming the request and the error, although every read was
// answered right and targets are not checked.
func TestRun_WriteErrorFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := runTool(t, "gendata", "-data-dir", dir, "-scale", "tiny"); err != nil {
		t.Fatal(err)
	}
	// The manifest names an account the store does not hold as the
	// largest: every write to it fails with NOT_FOUND.
	m, err := loadgen.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Accounts[0].ID = "acct-gone"
	if err := loadgen.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	wantRunFails(t, "run with failing writes",
		[]string{"run", "-inprocess", dir, "-duration", "2s", "-concurrency", "2", "-rounds", "1", "-writes", "2",
			"-batch", "10", "-batch-concurrency", "2", "-bare=false", "-fail-on-miss=false"},
		"on acct-gone", "failed unexpectedly", "request:", `account_id:"acct-gone"`, "NotFound")
}

// TestRun_WritesOnAccountAtLimit: the write phase on an account that holds
// the per-account maximum of allowlist entries measures creates and
// deletes without an error and leaves the account's entries as they were.
func TestRun_WritesOnAccountAtLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := runTool(t, "gendata", "-data-dir", dir, "-scale", "tiny"); err != nil {
		t.Fatal(err)
	}
	m, err := loadgen.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	big := m.Accounts[0]
	st, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var before []policy.AllowlistEntry
	_, err = st.Update(context.Background(), func(tx store.Tx) error {
		for i := big.Allowlist; i < server.MaxAllowlistEntries; i++ {
			e := policy.AllowlistEntry{ID: fmt.Sprintf("fill-%05d", i), Pattern: fmt.Sprintf("fill-%05d.limit-filler.test", i)}
			if err := store.PutAllowlistEntry(tx, big.ID, &e); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = st.View(context.Background(), func(tx store.ReadTx) error {
			a, _, err := store.LoadAccount(tx, big.ID, false)
			before = a.Allowlist
			return err
		})
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil || len(before) != server.MaxAllowlistEntries {
		t.Fatalf("filling %s to %d entries: %d, %v", big.ID, server.MaxAllowlistEntries, len(before), err)
	}
	m.Accounts[0].Allowlist = len(before)
	if err := loadgen.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	reportPath := filepath.Join(dir, "report.json")
	out, err := runTool(t, "run", "-inprocess", dir, "-duration", "3s", "-concurrency", "2", "-rounds", "1", "-writes", "3",
		"-batch", "10", "-batch-concurrency", "2", "-bare=false", "-fail-on-miss=false", "-json", reportPath)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	var rep report
	b, err := os.ReadFile(reportPath)
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The write budget may end the series early; every call measured
	// must have succeeded, and deletes and creates come in pairs.
	measured := map[string]uint64{}
	for _, w := range rep.Writes {
		if w.Account == big.ID {
			measured[w.Name] = w.N
		}
	}
	if c, d := measured["CreateAllowlistEntry"], measured["DeleteAllowlistEntry"]; c == 0 || c != d {
		t.Errorf("on %s: %d creates and %d deletes measured, want as many of each and at least one:\n%s", big.ID, c, d, out)
	}
	st, err = bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var after []policy.AllowlistEntry
	if err := st.View(context.Background(), func(tx store.ReadTx) error {
		a, _, err := store.LoadAccount(tx, big.ID, false)
		after = a.Allowlist
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%s holds %d entries after the run, %d before", big.ID, len(after), len(before))
	}
	for i := range before {
		if before[i].ID != after[i].ID || before[i].Pattern != after[i].Pattern || before[i].Description != after[i].Description {
			t.Fatalf("entry %d changed: %+v -> %+v", i, before[i], after[i])
		}
	}
}

// TestHelp: --help (and its spellings) lists every subcommand and
// succeeds, a command's -h succeeds, and an unknown command points to
// --help.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"help"}} {
		out, err := runTool(t, args...)
		if err != nil {
			t.Errorf("%v: %v", args, err)
		}
		for _, want := range []string{"gendata", "run", "reflect", "bare-server"} {
			if !strings.Contains(out, "gatehouse-loadtest "+want) {
				t.Errorf("%v lists no %q:\n%s", args, want, out)
			}
		}
	}
	for _, cmd := range []string{"run", "gendata", "reflect"} {
		if _, err := runTool(t, cmd, "-h"); err != nil {
			t.Errorf("%s -h: %v", cmd, err)
		}
	}
	if _, err := runTool(t, "frobnicate"); err == nil || !strings.Contains(err.Error(), "--help") {
		t.Errorf("unknown command: %v", err)
	}
}

// TestMissingDataSuggestsGendata: run and reflect without generated data
// say how to generate it.
func TestMissingDataSuggestsGendata(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nothing-here")
	for _, args := range [][]string{
		{"-manifest", missing},
		{"run", "-manifest", missing},
		{"run", "-manifest", filepath.Join(missing, loadgen.ManifestName)},
		{"reflect", "-data-dir", missing},
	} {
		_, err := runTool(t, args...)
		if err == nil || !strings.Contains(err.Error(), "gatehouse-loadtest gendata -data-dir "+missing) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestRun_HostileSmoke runs the hostile mode briefly in-process: the
// normal tenant's answers are verified, every hostile caller gets through
// or is refused as documented, and the stores' hostile changes are undone.
func TestRun_HostileSmoke(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := runTool(t, "gendata", "-data-dir", dir, "-scale", "small"); err != nil {
		t.Fatal(err)
	}
	reportPath := filepath.Join(dir, "report.json")
	out, err := runTool(t, "run", "-inprocess", dir, "-baseline=false", "-hostile", "-hostile-rounds", "1", "-hostile-phase", "150ms",
		"-hostile-callers", "4", "-fail-on-miss=false", "-json", reportPath)
	if err != nil {
		t.Fatalf("run -hostile: %v\n%s", err, out)
	}
	var rep report
	b, err := os.ReadFile(reportPath)
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	if err != nil {
		t.Fatal(err)
	}
	h := rep.Hostile
	if h == nil || h.Alone.Calls == 0 || h.UnderAttack.Calls == 0 || len(h.Attacks) != 5 {
		t.Fatalf("hostile report incomplete: %+v\n%s", h, out)
	}
	for _, a := range h.Attacks {
		if a.OK+a.Refused+a.Unfinished == 0 || a.Errors > 0 {
			t.Errorf("hostile %s: %d ok, %d refused, %d unfinished, %d errors (%s)", a.Name, a.OK, a.Refused, a.Unfinished, a.Errors, a.FirstError)
		}
	}
	if i := slices.IndexFunc(rep.Targets, func(x target) bool { return strings.HasPrefix(x.Name, "hostile:") }); i < 0 {
		t.Errorf("no hostile target: %+v", rep.Targets)
	}
	// The rules and the decision log switch are gone again.
	st, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.View(context.Background(), func(tx store.ReadTx) error {
		for _, id := range h.Accounts {
			a, _, err := store.LoadAccount(tx, id, false)
			if err != nil {
				return err
			}
			if a.Account.DecisionLogPercent != 0 {
				t.Errorf("%s keeps decision_log_percent %d", id, a.Account.DecisionLogPercent)
			}
			for _, r := range a.PrivacyRules {
				if strings.HasPrefix(r.ID, "lt-hostile-") {
					t.Errorf("%s keeps rule %s", id, r.ID)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
