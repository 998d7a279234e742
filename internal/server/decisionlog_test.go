package server

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

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

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

// TestDecisionLog_PerAccount: only accounts that turn the log on have
// their decisions logged, with what was asked, the answer and the revision.
func TestDecisionLog_PerAccount(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	var buf syncBuffer
	e.srv.decisions = &decisionLog{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	ctx := ctxT(t)
	e.MustCreateAccount("on")
	e.MustCreateAccount("off")
	if _, err := e.admin.UpdateAccount(ctx, &gatehousev1.UpdateAccountRequest{Account: &gatehousev1.Account{Id: "on", DecisionLogPercent: 100}, UpdateMask: mask("decision_log_percent")}); err != nil {
		t.Fatal(err)
	}
	_, err := e.admin.UpdateAccount(ctx, &gatehousev1.UpdateAccountRequest{Account: &gatehousev1.Account{Id: "on", DecisionLogPercent: 101}, UpdateMask: mask("decision_log_percent")})
	wantInvalid(t, err, "account.decision_log_percent")
	on, off := e.MustStartSession("on"), e.MustStartSession("off")
	for _, s := range []*gatehousev1.Session{on, off} {
		e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: s.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("decision log lines: %q", lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["msg"] != "decision" || rec["account"] != "on" || rec["session"] != on.GetId() || rec["feature"] != "chat" ||
		rec["reason"] != "feature_disabled" || rec["allowed"] != false || rec["revision"] == nil {
		t.Fatalf("decision log record = %v", rec)
	}
}

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

// TestDecisionLog_Bounded: a flood of decisions of one account logs at
// most its share per second, and a flood of many accounts at most the
// daemon's bound, each account at most its share.
func TestDecisionLog_Bounded(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	now := time.Unix(1_000_000, 0)
	l := &decisionLog{log: slog.New(slog.NewJSONHandler(&buf, nil)), now: func() time.Time { return now }}
	accounts := []string{"a", "b", "c", "d", "e", "f"}
	snap := logSnapshot(accounts...)
	for range 3 * decisionLogPerSecond {
		for _, acct := range accounts {
			l.record(context.Background(), snap, &policy.Query{SessionID: "s-" + acct, Feature: policy.FeatureChat}, policy.Decision{Allowed: true, Reason: policy.ReasonAllowed})
		}
	}
	lines, _ := logLines(t, &buf)
	total := 0
	for acct, n := range lines {
		total += n
		if n > decisionLogAccountPerSecond {
			t.Errorf("account %s logged %d lines in one second; its share is %d", acct, n, decisionLogAccountPerSecond)
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
	l := newDecisionLog(slog.New(slog.NewJSONHandler(&buf, nil)), m)
	now := time.Unix(1_000_000, 0)
	l.now = func() time.Time { return now }
	snap := logSnapshot("a", "b")
	decide := func(acct string, n int) {
		for range n {
			l.record(context.Background(), snap, &policy.Query{SessionID: "s-" + acct, Feature: policy.FeatureChat}, policy.Decision{Allowed: true, Reason: policy.ReasonAllowed})
		}
	}
	const flood, quiet = 5000, 30
	decide("a", flood)
	decide("b", quiet)
	lines, _ := logLines(t, &buf)
	if lines["b"] != quiet {
		t.Errorf("account b logged %d of %d lines while a flooded; want all", lines["b"], quiet)
	}
	if lines["a"] != decisionLogAccountPerSecond {
		t.Errorf("flooding account a logged %d lines; want its share %d", lines["a"], decisionLogAccountPerSecond)
	}
	if got := metricValue(t, m, "gatehouse_decision_log_dropped_total", "account=a"); got != flood-decisionLogAccountPerSecond {
		t.Errorf("dropped{account=a} = %v, want %d", got, flood-decisionLogAccountPerSecond)
	}
	if got := metricValue(t, m, "gatehouse_decision_log_dropped_total", "account=b"); got != 0 {
		t.Errorf("dropped{account=b} = %v, want 0", got)
	}
	now = now.Add(time.Second)
	decide("a", 1)
	if _, dropped := logLines(t, &buf); dropped["a"] != flood-decisionLogAccountPerSecond {
		t.Errorf("a's next line reports %v dropped lines; want %d", dropped["a"], flood-decisionLogAccountPerSecond)
	}
}

// TestDecisionLog_BoundedAccounts: however many accounts log, the budgets
// tracked stay bounded, and once they idle new accounts get budgets again.
func TestDecisionLog_BoundedAccounts(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	now := time.Unix(1_000_000, 0)
	l := &decisionLog{log: slog.New(slog.NewJSONHandler(&buf, nil)), now: func() time.Time { return now }}
	ids := make([]string, decisionLogMaxAccounts+500)
	for i := range ids {
		ids[i] = fmt.Sprintf("acct-%05d", i)
	}
	snap := logSnapshot(ids...)
	for _, id := range ids {
		l.record(context.Background(), snap, &policy.Query{SessionID: "s-" + id, Feature: policy.FeatureChat}, policy.Decision{Allowed: true, Reason: policy.ReasonAllowed})
	}
	if n := len(l.accounts); n > decisionLogMaxAccounts {
		t.Fatalf("%d account budgets tracked; the bound is %d", n, decisionLogMaxAccounts)
	}
	now = now.Add(2 * time.Second)
	buf.mu.Lock()
	buf.b.Reset()
	buf.mu.Unlock()
	late := ids[len(ids)-1]
	l.record(context.Background(), snap, &policy.Query{SessionID: "s-" + late, Feature: policy.FeatureChat}, policy.Decision{Allowed: true, Reason: policy.ReasonAllowed})
	if lines, _ := logLines(t, &buf); lines[late] != 1 {
		t.Fatalf("an account logging after the others went idle: %d lines, want 1", lines[late])
	}
	if n := len(l.accounts); n > decisionLogMaxAccounts {
		t.Fatalf("%d account budgets tracked; the bound is %d", n, decisionLogMaxAccounts)
	}
}

// TestDecisionLog_FloodOverRPC: through a real server, an account asking
// a thousand questions at once does not take the log lines of another.
func TestDecisionLog_FloodOverRPC(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	var buf syncBuffer
	e.srv.decisions = newDecisionLog(slog.New(slog.NewJSONHandler(&buf, nil)), nil)
	ctx := ctxT(t)
	sessions := map[string]string{}
	for _, acct := range []string{"a", "b"} {
		e.MustCreateAccount(acct)
		if _, err := e.admin.UpdateAccount(ctx, &gatehousev1.UpdateAccountRequest{Account: &gatehousev1.Account{Id: acct, DecisionLogPercent: 100}, UpdateMask: mask("decision_log_percent")}); err != nil {
			t.Fatal(err)
		}
		sessions[acct] = e.MustStartSession(acct).GetId()
	}
	flood := &gatehousev1.CheckFeaturesRequest{}
	for range 1000 {
		flood.Checks = append(flood.Checks, &gatehousev1.CheckFeatureRequest{SessionId: sessions["a"], Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	}
	for range 2 {
		if _, err := e.decide.CheckFeatures(ctx, flood); err != nil {
			t.Fatal(err)
		}
	}
	const quiet = 20
	for range quiet {
		e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: sessions["b"], Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	}
	lines, _ := logLines(t, &buf)
	if lines["b"] != quiet {
		t.Errorf("b logged %d of %d decisions after a's flood of 2000; want all", lines["b"], quiet)
	}
	if lines["a"] >= 2000 || lines["a"] > 2*decisionLogAccountPerSecond {
		t.Errorf("a logged %d lines of 2000 decisions; its share is %d a second", lines["a"], decisionLogAccountPerSecond)
	}
}
