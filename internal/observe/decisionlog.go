package observe

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Bounds of the decision log.
const (
	// decisionLogPerSecond bounds the decision log of the whole daemon, so
	// that turning it on for busy accounts cannot flood the logs.
	decisionLogPerSecond = 200
	// DecisionLogAccountPerSecond is one account's share of it: an account
	// that logs more than this loses its own lines, not another's, and
	// four accounts at their share fill the daemon's bound.
	DecisionLogAccountPerSecond = 50
	// decisionLogMaxAccounts bounds the accounts whose budget is tracked
	// at once. Only accounts with the log on get one; when the map is full,
	// the budgets that are full again (idle for a second) are forgotten,
	// with the count of dropped lines their next line would have reported
	// (the metric keeps it). Only when more accounts than this log within
	// one second are lines of the others dropped for want of a budget.
	decisionLogMaxAccounts = 4096
	// decisionLogReserve is the part of the daemon's bound that accounts
	// over their fair share of it (the bound over the accounts logging in
	// this second or the last) cannot take: it is left to the others.
	decisionLogReserve = decisionLogPerSecond / 4
)

// DecisionLog writes a sampled, rate-bounded record of decisions for the
// accounts that turned it on (Account.decision_log_percent): each account
// has a token bucket of DecisionLogAccountPerSecond lines a second, and
// the daemon one of decisionLogPerSecond that every account's lines also
// take from. The daemon's bound is shared fairly: an account that has
// logged its fair share of it in the current second (the bound over the
// accounts that log in this second or did in the last) takes from it only
// while more than decisionLogReserve lines are left, so that busy accounts
// that come first do not use up what a quieter one needs. The zero value
// works, with the real clock and no metrics.
type DecisionLog struct {
	log *slog.Logger
	// now is the clock (time.Now when nil).
	now func() time.Time
	// dropped counts suppressed lines by account; nil without metrics.
	dropped *prometheus.CounterVec

	mu       sync.Mutex
	global   *rate.Limiter
	accounts map[string]*accountLogBudget
	// forgotAt is when forgetIdle last ran; it runs at most once a second.
	forgotAt time.Time
	// second is the current second (Unix); active and prevActive count the
	// accounts that asked to log in it and in the one before.
	second             int64
	active, prevActive int
}

// accountLogBudget is one account's bucket and the lines it dropped since
// its last line, which that line reports.
type accountLogBudget struct {
	limiter *rate.Limiter
	dropped int
	// second and lines are the lines logged in the current second.
	second int64
	lines  int
}

// NewDecisionLog returns a decision log writing to log; its dropped lines
// are counted in reg when it is set.
func NewDecisionLog(log *slog.Logger, reg *prometheus.Registry) *DecisionLog {
	l := &DecisionLog{log: log}
	if reg != nil {
		l.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_decision_log_dropped_total",
			Help: "Decision log lines not written because the account's share or the daemon's bound was used up, by account (only accounts with the decision log on appear).",
		}, []string{"account"})
		reg.MustRegister(l.dropped)
	}
	return l
}

// Record logs q and its answer when the account samples it and the bounds
// allow. While no account has the log on it costs one comparison.
func (l *DecisionLog) Record(ctx context.Context, snap *policy.Snapshot, q *policy.Query, d policy.Decision) {
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
	dropped, ok := l.take(sess.AccountID)
	if !ok {
		if l.dropped != nil {
			l.dropped.WithLabelValues(sess.AccountID).Inc()
		}
		return
	}
	l.log.LogAttrs(ctx, slog.LevelInfo, "decision",
		slog.String("account", sess.AccountID), slog.String("session", q.SessionID),
		slog.Int("role", int(q.Role)), slog.String("actor", q.ActorID),
		slog.String("feature", q.Feature.String()), slog.String("url", q.URL), slog.Int("frame", int(q.Frame)),
		slog.Bool("allowed", d.Allowed), slog.String("reason", d.Reason.String()), slog.String("rule", d.Rule),
		slog.Uint64("revision", snap.Revision()), slog.Int("dropped_before", dropped))
}

// take reports whether account may log a line now and, if so, how many of
// its lines were dropped since its last one. The account's own bucket is
// asked first, so that an account over its share does not use up the
// daemon's bound for the others.
func (l *DecisionLog) take(account string) (dropped int, ok bool) {
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.global == nil {
		l.global = rate.NewLimiter(decisionLogPerSecond, decisionLogPerSecond)
		l.accounts = map[string]*accountLogBudget{}
	}
	b := l.accounts[account]
	if b == nil {
		if len(l.accounts) >= decisionLogMaxAccounts && now.Sub(l.forgotAt) >= time.Second {
			l.forgotAt = now
			l.forgetIdle(now)
		}
		if len(l.accounts) >= decisionLogMaxAccounts {
			return 0, false
		}
		b = &accountLogBudget{limiter: rate.NewLimiter(DecisionLogAccountPerSecond, DecisionLogAccountPerSecond)}
		l.accounts[account] = b
	}
	if sec := now.Unix(); sec != l.second {
		l.prevActive = 0
		if sec == l.second+1 {
			l.prevActive = l.active
		}
		l.second, l.active = sec, 0
	}
	if b.second != l.second {
		b.second, b.lines = l.second, 0
		l.active++
	}
	over := float64(b.lines) >= float64(decisionLogPerSecond)/float64(max(l.active, l.prevActive))
	if !b.limiter.AllowN(now, 1) || over && l.global.TokensAt(now) < decisionLogReserve+1 || !l.global.AllowN(now, 1) {
		b.dropped++
		return 0, false
	}
	b.lines++
	dropped, b.dropped = b.dropped, 0
	return dropped, true
}

// forgetIdle drops the budgets that are full again: a new one would be
// the same.
func (l *DecisionLog) forgetIdle(now time.Time) {
	for id, b := range l.accounts {
		if b.limiter.TokensAt(now) >= DecisionLogAccountPerSecond {
			delete(l.accounts, id)
		}
	}
}
