package server

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
)

// DefaultCallLogRate is the default Options.CallLogRate: "finished call"
// lines a second of the failed calls of one code.
const DefaultCallLogRate = 20

// numCodes is the number of gRPC codes (OK to UNAUTHENTICATED).
const numCodes = int(codes.Unauthenticated) + 1

// callLogLimited reports whether the "finished call" lines of failed calls
// with code are rate-bounded: every code a caller can cause by what it
// sends or how fast it sends it. The server's own faults (UNKNOWN,
// UNIMPLEMENTED, INTERNAL, DATA_LOSS) are logged every time: they are rare
// unless something is broken, and then each one matters. Successful calls
// are logged only when slow (or at DEBUG) and are not bounded either.
func callLogLimited(code codes.Code) bool {
	switch code {
	case codes.OK, codes.Unknown, codes.Unimplemented, codes.Internal, codes.DataLoss:
		return false
	}
	return int(code) < numCodes
}

// callLogBudget bounds the log lines callers can make the server write:
// each gRPC code has its own token bucket of CallLogRate lines a second
// (bursts of as many), so that a flood of one kind of failure (bad tokens,
// invalid requests, calls shed under overload) neither fills the disk nor
// takes the CPU it is short of to format lines, nor crowds the lines of
// other failures out. A line past the budget is not written but counted:
// the next line written for its code reports how many were suppressed
// since the previous one, and gatehouse_call_log_suppressed_total{code}
// counts them all. Asking costs a mutex and a clock read, and allocates
// nothing. A nil budget lets everything through.
type callLogBudget struct {
	// lines[code] is nil for a code that is not bounded.
	lines [numCodes]*codeLogBudget
}

// codeLogBudget is one code's bucket and the lines it suppressed since
// its last line, which that line reports.
type codeLogBudget struct {
	limiter    *rate.Limiter
	suppressed atomic.Int64
	// counter counts the suppressed lines; nil without metrics.
	counter prometheus.Counter
}

// newDryRunLogBudget returns the budget of CheckHypothetical's dry-run
// lines, the one line of successful calls that is written for every call
// at INFO: perSecond lines a second as newCallLogBudget, counted under code
// OK.
func newDryRunLogBudget(perSecond int, m *Metrics) *codeLogBudget {
	perSecond, bounded := callLogRate(perSecond)
	if !bounded {
		return nil
	}
	var counter prometheus.Counter
	if m != nil {
		counter = m.callLogSuppressed.WithLabelValues(codes.OK.String())
	}
	return newCodeLogBudget(perSecond, counter)
}

// newCallLogBudget returns the budget of perSecond lines a second per code
// (nil, no bound, when perSecond is negative; DefaultCallLogRate when 0),
// counting suppressed lines in m when it is set.
func newCallLogBudget(perSecond int, m *Metrics) *callLogBudget {
	perSecond, bounded := callLogRate(perSecond)
	if !bounded {
		return nil
	}
	b := &callLogBudget{}
	for c := range codes.Code(numCodes) {
		if !callLogLimited(c) {
			continue
		}
		var counter prometheus.Counter
		if m != nil {
			counter = m.callLogSuppressed.WithLabelValues(c.String())
		}
		b.lines[c] = newCodeLogBudget(perSecond, counter)
	}
	return b
}

// callLogRate applies Options.CallLogRate's default (0:
// DefaultCallLogRate) and reports whether it bounds anything (negative: no
// bound).
func callLogRate(perSecond int) (int, bool) {
	if perSecond == 0 {
		return DefaultCallLogRate, true
	}
	return perSecond, perSecond > 0
}

// newCodeLogBudget returns a bucket of perSecond lines a second, bursts of
// as many, counting suppressed lines in counter when it is set.
func newCodeLogBudget(perSecond int, counter prometheus.Counter) *codeLogBudget {
	return &codeLogBudget{limiter: rate.NewLimiter(rate.Limit(perSecond), perSecond), counter: counter}
}

// take reports whether a line of a call that ended with code may be
// written at now and, if so, how many lines of that code were suppressed
// since the last one written.
func (b *callLogBudget) take(code codes.Code, now time.Time) (suppressed int64, ok bool) {
	if b == nil || int(code) >= numCodes || b.lines[code] == nil {
		return 0, true
	}
	return b.lines[code].take(now)
}

// take reports whether a line may be written at now and, if so, how many
// were suppressed since the last one written.
func (cb *codeLogBudget) take(now time.Time) (suppressed int64, ok bool) {
	if cb == nil {
		return 0, true
	}
	if !cb.limiter.AllowN(now, 1) {
		cb.suppressed.Add(1)
		if cb.counter != nil {
			cb.counter.Inc()
		}
		return 0, false
	}
	return cb.suppressed.Swap(0), true
}

// newCallLogSuppressed returns the counter of suppressed "finished call"
// lines by code, with a series for every bounded code.
func newCallLogSuppressed() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_call_log_suppressed_total",
		Help: "Log lines of failed calls (and of their store causes) not written because their code's budget (--call-log-rate lines a second) was used up, by gRPC code (OK: CheckHypothetical's dry-run lines); the next line of the code says how many in its suppressed attribute.",
	}, []string{"code"})
	for code := range codes.Code(numCodes) {
		if callLogLimited(code) || code == codes.OK {
			c.WithLabelValues(code.String())
		}
	}
	return c
}

// NewLimitedHandler returns a handler that passes at most perSecond of the
// records it is given a second to h (bursts of as many; every record when
// perSecond is 0 or less). A record past the budget is dropped and counted
// in suppressed (when not nil), and the next record passed on carries
// suppressed, how many were dropped since the previous one. It bounds the
// lines a source writes per event that anyone who can connect can cause
// at any rate: net/http's server writes one per failed TLS handshake.
func NewLimitedHandler(h slog.Handler, perSecond int, suppressed prometheus.Counter) slog.Handler {
	if perSecond <= 0 {
		return h
	}
	return &limitedHandler{Handler: h, budget: newCodeLogBudget(perSecond, suppressed)}
}

// limitedHandler is NewLimitedHandler's handler; handlers derived from it
// share its budget.
type limitedHandler struct {
	slog.Handler
	budget *codeLogBudget
}

func (l *limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	n, ok := l.budget.take(now)
	if !ok {
		return nil
	}
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int64("suppressed", n))
	}
	return l.Handler.Handle(ctx, r)
}

func (l *limitedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &limitedHandler{Handler: l.Handler.WithAttrs(attrs), budget: l.budget}
}

func (l *limitedHandler) WithGroup(name string) slog.Handler {
	return &limitedHandler{Handler: l.Handler.WithGroup(name), budget: l.budget}
}
