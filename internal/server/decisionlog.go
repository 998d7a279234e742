package server

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// decisionLogPerSecond bounds the decision log of the whole daemon, so that
// turning it on for a busy account cannot flood the logs.
const decisionLogPerSecond = 200

// decisionLog writes a sampled, rate-bounded record of decisions for the
// accounts that turned it on (Account.decision_log_percent).
type decisionLog struct {
	log *slog.Logger

	mu     sync.Mutex
	second int64
	used   int
	// dropped counts lines the bound suppressed in the current second; it
	// is reported with the first line of the next one.
	dropped int
}

// record logs q and its answer when the account samples it and the bound
// allows. While no account has the log on it costs one comparison.
func (l *decisionLog) record(ctx context.Context, snap *policy.Snapshot, q *policy.Query, d policy.Decision) {
	if !snap.DecisionLogged() {
		return
	}
	sess := snap.Session(q.SessionID)
	if sess == nil {
		return
	}
	as := snap.Account(sess.AccountID)
	if as == nil || as.Account.DecisionLogPercent == 0 || rand.Uint32N(100) >= as.Account.DecisionLogPercent {
		return
	}
	now := time.Now().Unix()
	l.mu.Lock()
	if now != l.second {
		l.second, l.used = now, 0
	}
	allowed := l.used < decisionLogPerSecond
	dropped := 0
	if allowed {
		l.used++
		dropped, l.dropped = l.dropped, 0
	} else {
		l.dropped++
	}
	l.mu.Unlock()
	if !allowed {
		return
	}
	l.log.LogAttrs(ctx, slog.LevelInfo, "decision",
		slog.String("account", sess.AccountID), slog.String("session", q.SessionID),
		slog.Int("role", int(q.Role)), slog.String("actor", q.ActorID),
		slog.String("feature", q.Feature.String()), slog.String("url", q.URL), slog.Int("frame", int(q.Frame)),
		slog.Bool("allowed", d.Allowed), slog.String("reason", d.Reason.String()), slog.String("rule", d.Rule),
		slog.Uint64("revision", snap.Revision()), slog.Int("dropped_before", dropped))
}
