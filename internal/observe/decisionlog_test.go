package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// TestDecisionLog_Bounded: a flood of decisions of one account logs at
// most its share per second, and a flood of many accounts at most the
// daemon's bound, each account at most its share.
func TestDecisionLog_Bounded(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	now := time.Unix(1_000_000, 0)
	l := &DecisionLog{log: slog.New(slog.NewJSONHandler(&buf, nil)), now: func() time.Time { return now }}
	accounts := []string{"a", "b", "c", "d", "e", "f"}
	snap := logSnapshot(accounts...)
	for range 3 * decisionLogPerSecond {
		for _, acct := range accounts {
			l.Record(context.Background(), snap, &policy.Query{SessionID: "s-" + acct, Feature: policy.FeatureChat}, policy.Decision{Allowed: true, Reason: policy.ReasonAllowed})
		}
	}
	lines, _ := logLines(t, &buf)
	total := 0
	for acct, n := range lines {
		total += n
		if n > DecisionLogAccountPerSecond {
			t.Errorf("account %s logged %d lines in one second; its share is %d", acct, n, DecisionLogAccountPerSecond)
		}
	}
	if total != decisionLogPerSecond {
		t.Errorf("%d lines in one second from %d flooding accounts; the bound is %d", total, len(accounts), decisionLogPerSecond)
	}
}

// TestDecisionLog_FloodingAccountKeepsToItsShare: an account flooding the
// log loses its own lines, not another account's; its drops are counted
// in the metric under its account and reported with its next line.
func TestDecisionLog_FloodingAccountKeepsToItsShare(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	m := NewMetrics()
	l := NewDecisionLog(slog.New(slog.NewJSONHandler(&buf, nil)), m.Registry)
	now := time.Unix(1_000_000, 0)
	l.now = func() time.Time { return now }
	snap := logSnapshot("a", "b")
	decide := func(acct string, n int) {
		for range n {
			l.Record(context.Background(), snap, &policy.Query{SessionID: "s-" + acct, Feature: policy.FeatureChat}, policy.Decision{Allowed: true, Reason: policy.ReasonAllowed})
		}
	}
	const flood, quiet = 5000, 30
	decide("a", flood)
	decide("b", quiet)
	lines, _ := logLines(t, &buf)
	if lines["b"] != quiet {
		t.Errorf("account b logged %d of %d lines while a flooded; want all", lines["b"], quiet)
	}
	if lines["a"] != DecisionLogAccountPerSecond {
		t.Errorf("flooding account a logged %d lines; want its share %d", lines["a"], DecisionLogAccountPerSecond)
	}
	if got := metricValue(t, m, "gatehouse_decision_log_dropped_total", "account=a"); got != flood-DecisionLogAccountPerSecond {
		t.Errorf("dropped{account=a} = %v, want %d", got, flood-DecisionLogAccountPerSecond)
	}
	if got := metricValue(t, m, "gatehouse_decision_log_dropped_total", "account=b"); got != 0 {
		t.Errorf("dropped{account=b} = %v, want 0", got)
	}
	now = now.Add(time.Second)
	decide("a", 1)
	if _, dropped := logLines(t, &buf); dropped["a"] != flood-DecisionLogAccountPerSecond {
		t.Errorf("a's next line reports %v dropped lines; want %d", dropped["a"], flood-DecisionLogAccountPerSecond)
	}
}

// TestDecisionLog_QuietAccountKeepsItsShare: four accounts flooding the
// log first in every second do not use up the daemon's bound: a fifth
// that logs ten lines a second after them, under its fair share, loses
// none of them once it counts as active, while the flooding ones are held
// to the bound.
func TestDecisionLog_QuietAccountKeepsItsShare(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	now := time.Unix(1_000_000, 0)
	l := &DecisionLog{log: slog.New(slog.NewJSONHandler(&buf, nil)), now: func() time.Time { return now }}
	snap := logSnapshot("a", "b", "c", "d", "e")
	decide := func(acct string, n int) {
		for range n {
			l.Record(context.Background(), snap, &policy.Query{SessionID: "s-" + acct, Feature: policy.FeatureChat}, policy.Decision{Allowed: true, Reason: policy.ReasonAllowed})
		}
	}
	for sec := range 3 {
		buf.mu.Lock()
		buf.b.Reset()
		buf.mu.Unlock()
		for _, acct := range []string{"a", "b", "c", "d"} {
			decide(acct, 200)
		}
		decide("e", 10)
		lines, _ := logLines(t, &buf)
		total := 0
		for _, n := range lines {
			total += n
		}
		t.Logf("second %d: %v", sec, lines)
		if total > decisionLogPerSecond {
			t.Errorf("second %d: %d lines, over the daemon's bound %d", sec, total, decisionLogPerSecond)
		}
		if sec > 0 && lines["e"] != 10 {
			t.Errorf("second %d: the quiet account logged %d of its 10 lines", sec, lines["e"])
		}
		now = now.Add(time.Second)
	}
}

// TestDecisionLog_BoundedAccounts: however many accounts log, the budgets
// tracked stay bounded, and once they idle new accounts get budgets again.
func TestDecisionLog_BoundedAccounts(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	now := time.Unix(1_000_000, 0)
	l := &DecisionLog{log: slog.New(slog.NewJSONHandler(&buf, nil)), now: func() time.Time { return now }}
	ids := make([]string, decisionLogMaxAccounts+500)
	for i := range ids {
		ids[i] = fmt.Sprintf("acct-%05d", i)
	}
	snap := logSnapshot(ids...)
	for _, id := range ids {
		l.Record(context.Background(), snap, &policy.Query{SessionID: "s-" + id, Feature: policy.FeatureChat}, policy.Decision{Allowed: true, Reason: policy.ReasonAllowed})
	}
	if n := len(l.accounts); n > decisionLogMaxAccounts {
		t.Fatalf("%d account budgets tracked; the bound is %d", n, decisionLogMaxAccounts)
	}
	now = now.Add(2 * time.Second)
	buf.mu.Lock()
	buf.b.Reset()
	buf.mu.Unlock()
	late := ids[len(ids)-1]
	l.Record(context.Background(), snap, &policy.Query{SessionID: "s-" + late, Feature: policy.FeatureChat}, policy.Decision{Allowed: true, Reason: policy.ReasonAllowed})
	if lines, _ := logLines(t, &buf); lines[late] != 1 {
		t.Fatalf("an account logging after the others went idle: %d lines, want 1", lines[late])
	}
	if n := len(l.accounts); n > decisionLogMaxAccounts {
		t.Fatalf("%d account budgets tracked; the bound is %d", n, decisionLogMaxAccounts)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// logSnapshot is a snapshot of accounts that log every decision, each
// with one session "s-<account>".
func logSnapshot(accounts ...string) *policy.Snapshot {
	states := map[string]*policy.AccountState{}
	sessions := map[string]*policy.Session{}
	for _, id := range accounts {
		states[id] = policy.Compile(policy.AccountData{Account: policy.Account{ID: id, DecisionLogPercent: 100}})
		sessions["s-"+id] = &policy.Session{ID: "s-" + id, AccountID: id}
	}
	return policy.NewSnapshot(1, states, sessions)
}

// logLines counts the decision lines of buf by account, and returns the
// dropped_before of each account's last line.
func logLines(t *testing.T, buf *syncBuffer) (lines map[string]int, droppedBefore map[string]float64) {
	t.Helper()
	lines, droppedBefore = map[string]int{}, map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		acct, _ := rec["account"].(string)
		lines[acct]++
		droppedBefore[acct], _ = rec["dropped_before"].(float64)
	}
	return lines, droppedBefore
}

// metricValue returns the value of the gauge or counter name of m whose
// labels include every name=value pair given (0 when none is served).
func metricValue(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for _, kv := range labels {
				k, v, _ := strings.Cut(kv, "=")
				if have[k] != v {
					continue series
				}
			}
			sum += s.GetGauge().GetValue() + s.GetCounter().GetValue()
		}
	}
	return sum
}
