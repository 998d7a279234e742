package server

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/tap"
)

// Defaults of the queue-delay shedder (see Limits.QueueTarget).
const (
	DefaultQueueTarget   = 3 * time.Millisecond
	DefaultQueueInterval = 100 * time.Millisecond
)

// Shed reasons, the "reason" label of gatehouse_shed_total and the
// "shed" metadata of a shed call's ErrorInfo.
const (
	shedInflight       = "inflight"
	shedInflightCaller = "inflight_caller"
	shedQueueDelay     = "queue_delay"
)

// arrival is put in a call's context by the InTapHandle when its stream
// arrives, on the connection's reader goroutine before a goroutine is
// started for the call. The limiter reads the clock when the call reaches
// it (after the request was read and decoded, before the handler); the
// difference is how long the call queued for the CPU.
//
// The wait therefore includes reading the request after its headers and
// decoding it. For the calls that are shed by it, decisions, that is
// microseconds: a CheckFeature request is a few hundred bytes that arrive
// with its headers, and a CheckFeatures batch is at most maxChecks of them.
// A request that trickles in over a slow connection counts its transfer,
// which only matters while a queue stands (queueShedder); such a call is
// told to retry. Stamping the goroutine's start instead needs a
// stats.Handler, with which grpc-go copies every call's metadata and
// allocates and delivers a stats event for each of its steps; that cost
// every call more than the decision it guards.
//
// The stamp is a context of its own, one allocation per call (a
// context.WithValue of a time would be two).
type arrival struct {
	context.Context
	at time.Time
	// waited is how long the handler waited without using the CPU
	// (addIdleWait), decoded how long decoding a large request took
	// (addDecodeCost).
	waited, decoded time.Duration
	// done, when set, ends the call's place in the admission gate with
	// its cost; ticket is that place (admissionGate.arrive), gated whether
	// it went through the gate.
	done   func(cost time.Duration)
	ticket gateTicket
	gated  bool
}

type arrivalKey struct{}

func (a *arrival) Value(key any) any {
	if key == (arrivalKey{}) {
		return a
	}
	return a.Context.Value(key)
}

// tap is the server's InTapHandle: it stamps each call's arrival, refuses
// a decision past the admission gate's limit (admissionGate), and while the
// CPU is contended refuses a decision whose connection used more than its
// share of the CPU (callerCPU), before its request is read or a goroutine
// started for it. Health checks are never shed nor timed, so they are not
// stamped.
func (l *limiter) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if strings.HasPrefix(info.FullMethodName, healthPrefix) {
		return ctx, nil
	}
	now := time.Now()
	unaryDecision := strings.HasPrefix(info.FullMethodName, decisionPrefix) &&
		info.FullMethodName != gatehousev1.DecisionService_WatchSessionPolicy_FullMethodName
	a := &arrival{at: now}
	if l.gate != nil && unaryDecision {
		var conn string
		if k := connKey(ctx); k.kind != 0 {
			conn = k.id
		}
		flagged := l.cpu != nil && conn != "" && l.cpu.connOverShare(conn)
		t, retry, ok := l.gate.arrive(now, conn, flagged)
		if !ok {
			l.metrics.countShed(shedQueueDelay)
			return nil, tapStatus(queueOverloadedEarly(l.gate.target, jitter(retry)))
		}
		a.ticket, a.gated = t, true
		// The decision leaves the gate when its handler returns (the
		// limiter calls a.done with its cost) or, if it never gets
		// there, when its stream ends.
		stop := context.AfterFunc(ctx, func() { l.gate.leave(t, 0) })
		a.done = func(cost time.Duration) {
			if stop() {
				l.gate.leave(t, cost)
			}
		}
	}
	if l.cpu != nil && l.cpu.contendedNow() && unaryDecision {
		if k := connKey(ctx); k.kind != 0 {
			if refuse, retry := l.cpu.refuseConn(k.id); refuse {
				l.metrics.countShed(shedCallerCPU)
				return nil, tapStatus(callerCPUOverloaded(k, l.cpuShare, jitter(retry)))
			}
		}
	}
	a.Context = ctx
	return a, nil
}

// queueWait returns how long the call of ctx queued before now (0 when its
// arrival was not stamped).
func queueWait(ctx context.Context, now time.Time) time.Duration {
	a, ok := ctx.Value(arrivalKey{}).(*arrival)
	if !ok {
		return 0
	}
	return max(now.Sub(a.at), 0)
}

// queueShedder decides, CoDel-style, which calls waited too long. While
// no queue stands nothing is shed: a burst, or a stall of the whole
// process (a CPU quota's throttling, a pause, a neighbour's load), is
// absorbed. A queue stands when in each of standingWindows whole
// intervals in a row most calls (more than half: the median wait) waited
// longer than target; from then on every call that waited longer than
// target is shed, which keeps the wait of the calls served near target
// however many callers there are, instead of letting it grow with them.
// The queue stops standing after an interval in which no call waited
// longer than target (shed callers come back after their RetryInfo delay,
// all at once; leaving at the first short wait would let them queue
// again), or after an idle one.
//
// CoDel proper takes the shortest wait of an interval, which in a FIFO
// queue is above target only while a queue stands. A gRPC server is not
// one FIFO: each connection's reader starts the calls it has read in a
// burst, and the first calls of a burst find the CPU free however long
// the others wait, so the shortest wait stays short under any load (the
// load test measured 60 % of calls waiting over 5ms, with a p99 of up to
// 250ms, and nothing shed). The median is not fooled by those few.
//
// Shedding alone cannot shorten the queue of a closed loop of callers:
// however many are refused, each comes back after its RetryInfo delay,
// and by Little's law the calls in flight (and so their latency) only fall
// when enough callers are waiting out their delay. So the delay a shed
// call is told adapts: it doubles after every interval that ends with the
// queue standing (up to maxRetryDelay) and halves after every interval
// that ends without (down to overloadRetryDelay), and each caller is told
// a random delay between half and one and a half times it, so that the
// callers shed together do not come back together.
type queueShedder struct {
	target, interval time.Duration

	mu          sync.Mutex
	windowStart time.Time
	windowN     int // calls since windowStart
	windowLong  int // calls since windowStart that waited longer than target
	above       int // whole intervals in a row in which most calls waited longer than target
	standing    bool
	retry       time.Duration // the RetryInfo delay shed calls are told (before jitter)
}

// maxRetryDelay bounds the RetryInfo delay of a call shed for queueing.
const maxRetryDelay = 5 * time.Second

// standingWindows is how many whole intervals in a row must have had
// mostly long waits before a queue is taken to stand: a stall of the process
// shorter than that sheds nothing.
const standingWindows = 3

func newQueueShedder(target, interval time.Duration) *queueShedder {
	return &queueShedder{target: target, interval: interval, retry: overloadRetryDelay}
}

// admit reports whether a call that reached its handler at now after
// waiting wait is served, the longest wait a standing queue accepts and,
// for a call not served, the RetryInfo delay to tell it (before jitter).
func (q *queueShedder) admit(now time.Time, wait time.Duration) (ok bool, limit, retry time.Duration) {
	q.mu.Lock()
	switch el := now.Sub(q.windowStart); {
	case el >= 2*q.interval || el < 0:
		// No call for a whole interval (or a clock step): the queue is
		// empty.
		q.standing, q.above = false, 0
		q.retry = overloadRetryDelay
		q.windowStart, q.windowN, q.windowLong = now, 0, 0
	case el >= q.interval:
		if 2*q.windowLong > q.windowN {
			q.above++
		} else {
			q.above = 0
		}
		q.standing = q.above >= standingWindows || (q.standing && q.windowLong > 0)
		if q.standing {
			q.retry = min(2*q.retry, maxRetryDelay)
		} else {
			q.retry = max(q.retry/2, overloadRetryDelay)
		}
		q.windowStart, q.windowN, q.windowLong = now, 0, 0
	}
	q.windowN++
	if wait > q.target {
		q.windowLong++
	}
	standing := q.standing
	retry = q.retry
	q.mu.Unlock()
	return !standing || wait <= q.target, q.target, retry
}

// jitter returns a random duration between d/2 and 3d/2.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d+1)
}

// shedMetrics count shed calls by reason and observe the queueing delay
// of every unary call.
type shedMetrics struct {
	shed       map[string]prometheus.Counter
	queueDelay prometheus.Histogram
	limit      prometheus.Gauge
	held       prometheus.Histogram
}

// newShedMetrics registers the shedding metrics with m's registry (or
// reuses them when a server was built with the same Metrics before); nil
// when m is nil.
func newShedMetrics(m *Metrics) *shedMetrics {
	if m == nil {
		return nil
	}
	shed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_shed_total",
		Help: "Unary calls refused with RESOURCE_EXHAUSTED to shed load, by reason: inflight (--max-inflight calls were running), inflight_caller (the caller had --max-inflight-per-caller calls running) queue_delay (refused on arrival by the admission gate, or the call waited for the CPU longer than --shed-queue-target while a queue stood) or caller_cpu (the caller's calls used more than its share of the CPU, --caller-cpu-share or an equal share among the active callers, while it was contended, and could not be held until the share refilled).",
	}, []string{"reason"})
	delay := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "gatehouse_queue_delay_seconds",
		Help:    "Time from a unary call's arrival on its connection to its handler's start (queueing for the CPU, and reading and decoding its request), health checks excluded.",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
	})
	limit := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_admission_limit",
		Help: "Decisions the admission gate lets be in flight at once (arrived and not finished), adapted to what the CPU serves within --shed-queue-target; past it a decision is refused on arrival (gatehouse_shed_total{reason=\"queue_delay\"}).",
	})
	held := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "gatehouse_caller_cpu_hold_seconds",
		Help:    "How long unary calls of callers past their share of the CPU (--caller-cpu-share) were held for their share to refill before they ran, while the CPU was contended; calls that could not be held are refused (gatehouse_shed_total{reason=\"caller_cpu\"}).",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2},
	})
	shed = register(m.Registry, shed)
	delay = register(m.Registry, delay)
	limit = register(m.Registry, limit)
	held = register(m.Registry, held)
	return &shedMetrics{
		shed: map[string]prometheus.Counter{shedInflight: shed.WithLabelValues(shedInflight), shedQueueDelay: shed.WithLabelValues(shedQueueDelay),
			shedInflightCaller: shed.WithLabelValues(shedInflightCaller), shedCallerCPU: shed.WithLabelValues(shedCallerCPU)},
		queueDelay: delay,
		limit:      limit,
		held:       held,
	}
}

// gateLimit returns the gauge of the admission gate's limit (nil without
// metrics).
func (m *shedMetrics) gateLimit() prometheus.Gauge {
	if m == nil {
		return nil
	}
	return m.limit
}

func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func (m *shedMetrics) countShed(reason string) {
	if m != nil {
		m.shed[reason].Inc()
	}
}

func (m *shedMetrics) observeHold(d time.Duration) {
	if m != nil {
		m.held.Observe(d.Seconds())
	}
}

func (m *shedMetrics) observeDelay(d time.Duration) {
	if m != nil {
		m.queueDelay.Observe(d.Seconds())
	}
}

// queueOverloadedEarly is the status of a decision refused on arrival
// because the admission gate has as much work in flight as its limit allows
// for the decision's connection (admissionGate.arrive).
func queueOverloadedEarly(limit, retry time.Duration) error {
	e := errs.Refuse(errs.ResourceExhausted, reasonOverloaded, map[string]string{"shed": shedQueueDelay, "early": "true"},
		"server is overloaded: decisions waited longer than %s for the CPU; retry with backoff", limit)
	e.RetryAfter = retry
	return e
}

// queueOverloaded is the status of a call shed because it queued too long,
// telling the caller to retry after retry.
func queueOverloaded(wait, limit, retry time.Duration) error {
	e := errs.Refuse(errs.ResourceExhausted, reasonOverloaded, map[string]string{
		"shed": shedQueueDelay, "queue_delay_us": strconv.FormatInt(wait.Microseconds(), 10)},
		"server is overloaded: the call waited %s for the CPU (limit %s); retry with backoff", wait.Round(time.Microsecond), limit)
	e.RetryAfter = retry
	return e
}
