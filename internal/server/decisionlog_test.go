package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/observe"
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
	e.srv.decisions = observe.NewDecisionLog(slog.New(slog.NewJSONHandler(&buf, nil)), nil)
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

// TestDecisionLog_FloodOverRPC: through a real server, an account asking
// a thousand questions at once does not take the log lines of another.
func TestDecisionLog_FloodOverRPC(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	var buf syncBuffer
	e.srv.decisions = observe.NewDecisionLog(slog.New(slog.NewJSONHandler(&buf, nil)), nil)
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
	if lines["a"] >= 2000 || lines["a"] > 2*observe.DecisionLogAccountPerSecond {
		t.Errorf("a logged %d lines of 2000 decisions; its share is %d a second", lines["a"], observe.DecisionLogAccountPerSecond)
	}
}
