package server

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Bounds of the admission gate's limit on the work in flight
// (admissionGate), in decisions of the average cost.
const (
	minGateLimit = 8
	maxGateLimit = 4096
	// DefaultGateMinInflight is the default number of decisions in
	// flight below which the gate refuses no caller within its CPU share
	// (Limits.GateMinInflight).
	DefaultGateMinInflight = 64
)

// admissionGate bounds the decisions in flight, from their arrival on the
// connection (the tap, before the request is read or a goroutine started
// for it) to their end, so that the queue in front of the CPU stays near
// the queue target however many callers there are. A decision past the
// limit is refused on arrival, in microseconds, with RetryInfo.
//
// What is bounded is the work in flight: each decision counts for what
// the decisions of its connection cost lately (handler time, waits for a
// revision excluded, and the decoding of a large request; a moving
// average), so that a queue of costly decisions is as long as its work,
// not as its number. The limit adapts with every decision that reaches its
// handler, from the wait it measured (arrival to handler) and the work
// that was in flight ahead of it when it arrived: by Little's law that
// work took the wait to be served, so work×target/wait in flight would have
// kept its wait at the target. A wait longer than the target sets the limit
// to that estimate at once (not below an eighth of the limit, nor
// minGateLimit decisions). Decisions that arrived before that cut do not
// cut again: their wait was formed by the limit before it, which would cut
// for the same queue twice (like TCP Vegas's window, the limit moves once
// per round trip of its feedback). A wait under half the target with the
// limit half used lets one more decision's work in. So the limit follows
// what the CPU serves within the target, call by call; it is enforced all
// the time, also when callers that were told to retry come back together,
// and under light load it is never reached.
//
// Fairness between connections: the gate lets connections in by tier, while
// the work in flight is within the whole limit, three quarters of it or
// half of it: first most connections, then those whose decisions cost more
// than twice the average lately, then those whose callers were refused for
// their share of the CPU lately (callerCPU, which knows the caller from the
// decoded request and takes the gate's long waits as contention). A
// connection with nothing in flight gets its one decision in beyond that.
// So a client with one call at a time next to a crowd, or with cheap calls
// next to costly ones, is refused after them, and a caller over its CPU
// share before anyone. Shares of the work in flight per connection would
// refuse a session server carrying many accounts' cheap decisions before a
// client with one caller over its CPU share: the caller is what is shared
// fairly, and only callerCPU knows it.
//
// The RetryInfo delay adapts to how many decisions are turned away: it
// doubles after an interval in which more were refused than half as many
// as were admitted (up to maxRetryDelay) and halves after one in which
// fewer than an eighth (down to overloadRetryDelay), so that the callers
// waiting out their delay come back at a rate the server refuses cheaply;
// each caller is told a random delay between half and one and a half times
// it (jitter), so that they do not come back together. A connection's
// refusals count in it up to twice its admissions, so that callers that
// ignore RetryInfo do not lengthen the delay told to others; connections
// whose callers are over their CPU share are told a delay of their own,
// adapted to their own refusals.
type admissionGate struct {
	target, interval time.Duration
	minInflight      int // see DefaultGateMinInflight

	mu     sync.Mutex
	conns  map[string]*gateConn // connections with decisions in flight or a recent cost
	work   float64              // the work in flight, ns (each decision at its connection's cost when it arrived)
	p0     float64              // the part of work let in in tier 0
	firsts int                  // decisions in flight let in past the limit as an idle connection's one
	n      int                  // decisions in flight
	limit  float64              // work in flight allowed, ns
	cost   float64              // a decision's cost, ns (moving average over all connections)
	cutAt  time.Time            // the last cut: decisions that arrived before it are not its feedback
	longAt time.Time            // the last decision that waited longer than target

	windowAt          time.Time
	admitted, refused int
	retry             time.Duration

	limitGauge prometheus.Gauge // nil without metrics
}

// gateConn is a connection's decisions in flight and their recent cost.
type gateConn struct {
	inflight int
	cost     float64 // ns per decision, moving average; 0: none measured
	seen     time.Time
	// The connection's RetryInfo delay and its decisions admitted and
	// refused in the current interval (rollWindow).
	retry             time.Duration
	admitted, refused int
}

// gateCostDefault is the cost of a decision before any was measured.
const gateCostDefault = float64(50 * time.Microsecond)

// gateCostlyFactor is how many times the average cost a connection's
// decisions must cost lately for it to be let in after the others.
const gateCostlyFactor = 2

// gateConnIdle is how long a connection without decisions in flight keeps
// its record.
const gateConnIdle = 10 * time.Second

func newAdmissionGate(target, interval time.Duration, limitGauge prometheus.Gauge) *admissionGate {
	g := &admissionGate{target: target, interval: interval, conns: map[string]*gateConn{},
		retry: overloadRetryDelay, cost: gateCostDefault, limitGauge: limitGauge}
	g.limit = maxGateLimit * g.cost
	g.minInflight = DefaultGateMinInflight
	g.setGauge()
	return g
}

// gateTicket is a decision's place in the gate: what it was admitted with.
type gateTicket struct {
	at    time.Time
	ahead float64 // work in flight before it, ns
	work  float64 // its own, ns
	p0    bool    // let in in tier 0
	first bool    // let in past the limit as an idle connection's one decision
	// within is set for a decision of a connection whose callers are not
	// refused for their CPU share: the queue shedder behind the gate does
	// not shed it (limiter.unaryInterceptor).
	within bool
	conn   string
}

// arrive is asked by the tap when a decision arrives on connection conn
// ("" when unknown) at now; flagged says that the connection's callers were
// refused for their share of the CPU lately (callerCPU.connOverShare). It
// returns the decision's ticket, to be given back to leave, or reports
// that it is refused, with the RetryInfo delay to tell it (before jitter).
func (g *admissionGate) arrive(now time.Time, conn string, flagged bool) (t gateTicket, retry time.Duration, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rollWindow(now)
	var c *gateConn
	if conn != "" {
		if c = g.conns[conn]; c == nil && len(g.conns) < maxConnRecords {
			c = &gateConn{retry: overloadRetryDelay}
			g.conns[conn] = c
		}
	}
	work := g.cost
	if c != nil && c.cost > 0 {
		work = c.cost
	}
	// The connection's tier: 0 for most, 1 when its decisions cost more
	// than gateCostlyFactor times the average lately, 2 when its callers
	// were refused for their CPU share lately, or it is unknown.
	tier := 2
	if c != nil && !flagged {
		tier = 0
		if work > gateCostlyFactor*g.cost {
			tier = 1
		}
	}
	// Tier 2 is let in while the work in flight, its own included, is
	// within half the limit, tier 1 three quarters, tier 0 the whole
	// limit, or, after a cut left more work in flight than the limit,
	// while tier 0's own work is within a quarter of it. A connection
	// that is not refused for its callers' CPU and has nothing in flight
	// gets one decision in beyond that, so that no such connection starves
	// (nor stays judged at the average cost), as long as fewer such
	// decisions are in flight than the limit's number of decisions. One
	// decision is always let in: an idle server serves any.
	var over bool
	switch after := g.work + work; tier {
	case 0:
		over = after > g.limit && (g.p0+work > g.limit/4 || after > 2*g.limit)
	case 1:
		over = after > g.limit*3/4
	default:
		over = after > g.limit/2
	}
	// Below minInflight decisions in flight the gate refuses only callers
	// over their CPU share (tier 2): so few decisions queue for a few
	// milliseconds of work at most, and a core kept busy by a closed loop
	// of 16 or 50 callers, whose waits pass the target now and then, is
	// not overload.
	if tier < 2 {
		over = over && g.n >= max(g.minInflight, 1)
	} else {
		over = over && g.n > 0
	}
	first := over && c != nil && !flagged && c.inflight == 0 && float64(g.firsts) < max(g.limit/g.cost, minGateLimit)
	if over && !first {
		g.refused++
		if c == nil {
			return gateTicket{}, g.retry, false
		}
		c.refused++
		if tier == 2 {
			return gateTicket{}, c.retry, false
		}
		return gateTicket{}, g.retry, false
	}
	if c != nil {
		c.inflight++
		c.admitted++
		c.seen = now
	}
	t = gateTicket{at: now, ahead: g.work, work: work, p0: tier == 0, first: first, within: tier < 2 || first, conn: conn}
	if first {
		g.firsts++
	}
	g.work += work
	if t.p0 {
		g.p0 += work
	}
	g.n++
	g.admitted++
	return t, 0, true
}

// leave ends a decision let in by arrive; cost is what it cost (0: not
// measured).
func (g *admissionGate) leave(t gateTicket, cost time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	g.work = max(g.work-t.work, 0)
	if t.p0 {
		g.p0 = max(g.p0-t.work, 0)
	}
	if t.first {
		g.firsts--
	}
	if g.n == 0 {
		g.work, g.p0 = 0, 0 // no rounding left over
	}
	if cost > 0 {
		g.cost += (float64(cost) - g.cost) / 64
	}
	c := g.conns[t.conn]
	if c == nil || t.conn == "" {
		return
	}
	c.inflight--
	if cost > 0 {
		if c.cost == 0 {
			c.cost = float64(cost)
		} else {
			c.cost += (float64(cost) - c.cost) / 8
		}
	}
}

// observe adapts the limit to a decision admitted with t that reached its
// handler at now.
func (g *admissionGate) observe(t gateTicket, now time.Time) {
	wait := now.Sub(t.at)
	if wait <= g.target && 2*wait > g.target {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if wait > g.target {
		g.longAt = now
		if t.at.Before(g.cutAt) {
			return // formed by the limit before the last cut
		}
		est := (t.ahead + t.work) * float64(g.target) / float64(wait)
		if l := max(est, g.limit/8, minGateLimit*g.cost); l < g.limit {
			g.limit, g.cutAt = l, now
			g.setGauge()
		}
		return
	}
	if 2*(t.ahead+t.work) >= g.limit && g.limit < maxGateLimit*g.cost {
		g.limit = min(g.limit+t.work, maxGateLimit*g.cost)
		g.setGauge()
	}
}

// rollWindow adapts the RetryInfo delays, the gate's and each
// connection's, at the end of an interval; g.mu held.
func (g *admissionGate) rollWindow(now time.Time) {
	el := now.Sub(g.windowAt)
	if el < g.interval && el >= 0 {
		return
	}
	idle := el >= 2*g.interval || el < 0
	// A connection's refusals count in the gate's delay up to twice its
	// admissions: callers that ignore RetryInfo do not lengthen it.
	admitted, refused := g.admitted, g.refused
	for _, c := range g.conns {
		refused -= max(c.refused-2*c.admitted-2, 0)
	}
	g.retry = adaptRetry(g.retry, admitted, refused, idle)
	g.windowAt, g.admitted, g.refused = now, 0, 0
	for id, c := range g.conns {
		c.retry = adaptRetry(c.retry, c.admitted, c.refused, idle)
		c.admitted, c.refused = 0, 0
		if c.inflight == 0 && now.Sub(c.seen) > gateConnIdle {
			delete(g.conns, id)
		}
	}
}

// adaptRetry returns the RetryInfo delay after an interval with admitted
// and refused decisions told retry: doubled (up to maxRetryDelay) when
// more than half as many were refused as admitted, halved (down to
// overloadRetryDelay) when fewer than an eighth, the floor after an idle
// interval or one without refusals.
func adaptRetry(retry time.Duration, admitted, refused int, idle bool) time.Duration {
	switch {
	case idle || refused == 0:
		return overloadRetryDelay
	case 2*refused > admitted:
		return min(2*retry, maxRetryDelay)
	case 8*refused < admitted:
		return max(retry/2, overloadRetryDelay)
	}
	return retry
}

// setGauge publishes the limit in decisions of the average cost; g.mu
// held.
func (g *admissionGate) setGauge() {
	if g.limitGauge != nil {
		g.limitGauge.Set(g.limit / g.cost)
	}
}

// contended reports whether a decision waited longer than the target
// within the last interval before now.
func (g *admissionGate) contended(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return now.Sub(g.longAt) < g.interval
}

// inflight returns the decisions in flight: arrived and not finished.
func (g *admissionGate) inflight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// currentLimit returns the gate's limit in decisions of the average cost.
func (g *admissionGate) currentLimit() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit / g.cost
}
