package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

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

// TestDecisionLog_Bounded: a flood of decisions logs at most the bound per
// second and says how many lines it dropped.
func TestDecisionLog_Bounded(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	l := &decisionLog{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	as := policy.Compile(policy.AccountData{Account: policy.Account{ID: "a", DecisionLogPercent: 100}})
	snap := policy.NewSnapshot(1, map[string]*policy.AccountState{"a": as}, map[string]*policy.Session{"s": {ID: "s", AccountID: "a"}})
	q := &policy.Query{SessionID: "s", Feature: policy.FeatureChat}
	for range 3 * decisionLogPerSecond {
		l.record(context.Background(), snap, q, policy.Decision{Allowed: true, Reason: policy.ReasonAllowed})
	}
	if n := strings.Count(buf.String(), "\n"); n < decisionLogPerSecond || n > 2*decisionLogPerSecond {
		t.Fatalf("%d lines for %d decisions; bound is %d per second", n, 3*decisionLogPerSecond, decisionLogPerSecond)
	}
}
