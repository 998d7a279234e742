package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
	if out, err := runTool(t, "gendata", "-data-dir", dir, "-scale", "tiny"); err != nil || !strings.Contains(out, "reusing") {
		t.Fatalf("second gendata: %v\n%s", err, out)
	}
	if _, err := runTool(t, "gendata", "-data-dir", dir, "-scale", "small"); err == nil || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("gendata over another scale: %v", err)
	}

	reportPath := filepath.Join(dir, "report.json")
	out, err = runTool(t, "run", "-inprocess", dir, "-duration", "2s", "-concurrency", "1,4", "-rounds", "1",
		"-writes", "2", "-batch", "10", "-batch-concurrency", "2", "-json", reportPath)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, want := range []string{"Health", "CheckFeature", "CheckFeatures x10", "ratio", "UpdateLiveGuideSettings", "CreateAllowlistEntry", "targets:"} {
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
