package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/loadgen"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

// TestMain lets the test binary act as the bare-server child that run
// starts (it re-executes its own binary).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "bare-server" {
		if err := bareServer(context.Background(), os.Args[2:], os.Stdin, os.Stdout, os.Stderr); err != nil {
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
		"UpdateLiveGuideSettings", "CreateAllowlistEntry", "overload:", "targets:"} {
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
	_, err = runTool(t, "run", "-inprocess", dir, "-duration", "3s", "-concurrency", "4", "-rounds", "1", "-writes", "0",
		"-batch", "10", "-batch-concurrency", "2", "-bare=false")
	if err == nil {
		t.Fatal("run against a changed store succeeded")
	}
	for _, want := range []string{"unexpectedly", "request:", "want:", "got:", "RESTRICTED"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
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
