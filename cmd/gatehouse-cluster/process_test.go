package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// stubborn starts a process that ignores SIGTERM (as a hung daemon would).
func stubborn(t *testing.T, name string, died chan *proc) *proc {
	t.Helper()
	p, err := startProc(name, filepath.Join(t.TempDir(), name+".log"), "/bin/sh",
		[]string{"-c", `trap "" TERM; exec sleep 60`}, nil, died)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	time.Sleep(200 * time.Millisecond) // let sh set the trap before the signal
	return p
}

// TestStopAll_KillsWhatOutlastsTheTimeout: a process that ignores SIGTERM
// is killed once --stop-timeout has passed, and named; one that stops
// is not.
func TestStopAll_KillsWhatOutlastsTheTimeout(t *testing.T) {
	t.Parallel()
	died := make(chan *proc, 2)
	hung := stubborn(t, "hung", died)
	fine, err := startProc("fine", filepath.Join(t.TempDir(), "fine.log"), "/bin/sh", []string{"-c", "exec sleep 60"}, nil, died)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	killed := stopAll([]*proc{fine, hung}, 500*time.Millisecond, nil)
	if !slices.Equal(killed, []string{"hung"}) {
		t.Errorf("killed %v, want [hung]", killed)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("stopAll returned after %v, before the timeout", d)
	}
	if how, ok := fine.outcome(); !ok {
		t.Errorf("the process that stopped on SIGTERM: %s, not expected", how)
	}
	if how, ok := hung.outcome(); ok || !strings.Contains(how, "SIGKILL") {
		t.Errorf("the killed process: %s, expected=%v; want killed by SIGKILL, not expected", how, ok)
	}
}

// TestStopAll_ForceKillsAtOnce: a second Ctrl-C (force) does not wait
// for the timeout.
func TestStopAll_ForceKillsAtOnce(t *testing.T) {
	t.Parallel()
	died := make(chan *proc, 1)
	hung := stubborn(t, "hung", died)
	force := make(chan struct{})
	close(force)
	start := time.Now()
	killed := stopAll([]*proc{hung}, time.Minute, force)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("stopAll took %v after force", d)
	}
	if !slices.Equal(killed, []string{"hung"}) || hung.running() {
		t.Errorf("killed %v, running %v", killed, hung.running())
	}
}

// TestProc_OutcomeOfAnUnaskedExit: a process that ends by itself is
// unexpected, whatever its status.
func TestProc_OutcomeOfAnUnaskedExit(t *testing.T) {
	t.Parallel()
	died := make(chan *proc, 2)
	for _, tc := range []struct{ script, want string }{{"exit 0", "exited 0"}, {"exit 3", "exited 3"}} {
		p, err := startProc("p", filepath.Join(t.TempDir(), "p.log"), "/bin/sh", []string{"-c", tc.script}, nil, died)
		if err != nil {
			t.Fatal(err)
		}
		<-died
		if how, ok := p.outcome(); ok || how != tc.want {
			t.Errorf("%s: outcome %q, expected=%v; want %q, not expected", tc.script, how, ok, tc.want)
		}
	}
}
