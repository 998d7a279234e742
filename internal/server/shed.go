package server

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Defaults of the queue-delay shedder (see Limits.QueueTarget).
const (
	DefaultQueueTarget   = 5 * time.Millisecond
	DefaultQueueInterval = 100 * time.Millisecond
)

// Shed reasons, the "reason" label of gatehouse_shed_total and the
// "shed" metadata of a shed call's ErrorInfo.
const (
	shedInflight       = "inflight"
	shedInflightCaller = "inflight_caller"
	shedQueueDelay     = "queue_delay"
)

// callTimes is put in a call's context when its stream arrives: arrived
// is stamped by the InTapHandle, on the connection's reader goroutine
// before a goroutine is started for the call; started by the stats
// handler's TagRPC, on that goroutine before the request message is read.
// started-arrived is how long the call queued for the CPU, without the
// time its request took to arrive or decode.
type callTimes struct {
	arrived, started time.Time
}

type callTimesKey struct{}

// stampArrival is the server's InTapHandle.
func stampArrival(ctx context.Context, _ *tap.Info) (context.Context, error) {
	return context.WithValue(ctx, callTimesKey{}, &callTimes{arrived: time.Now()}), nil
}

// queueClock is a stats.Handler that stamps when a call's goroutine
// starts; it records nothing else.
type queueClock struct{}

func (queueClock) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	if ct, ok := ctx.Value(callTimesKey{}).(*callTimes); ok {
		ct.started = time.Now()
	}
	return ctx
}

func (queueClock) HandleRPC(context.Context, stats.RPCStats)                         {}
func (queueClock) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (queueClock) HandleConn(context.Context, stats.ConnStats)                       {}

// queueWait returns how long the call of ctx queued for the CPU (0 when
// its times were not stamped).
func queueWait(ctx context.Context) time.Duration {
	ct, ok := ctx.Value(callTimesKey{}).(*callTimes)
	if !ok || ct.started.IsZero() {
		return 0
	}
	return max(ct.started.Sub(ct.arrived), 0)
}

// queueShedder decides, CoDel-style, which calls waited too long. While
// no queue stands nothing is shed: a burst, or a stall of the whole
// process (a CPU quota's throttling, a pause, a neighbour's load), is
// absorbed. A queue stands when even the shortest wait of each of
// standingWindows whole intervals in a row was above target; from then on
// every call that waited longer than target is shed, which keeps the wait
// of the calls served near target however many callers there are, instead
// of letting it grow with them. The queue stops standing after an
// interval in which no call waited longer than target (shed callers come
// back after their RetryInfo delay, all at once; leaving at the first
// short wait would let them queue again), or after an idle one.
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
	windowMin   time.Duration // shortest wait seen since windowStart
	windowOver  bool          // some wait since windowStart was above target
	above       int           // whole intervals in a row whose shortest wait was above target
	standing    bool
	retry       time.Duration // the RetryInfo delay shed calls are told (before jitter)
}

// maxRetryDelay bounds the RetryInfo delay of a call shed for queueing.
const maxRetryDelay = 5 * time.Second

// standingWindows is how many whole intervals in a row must have had no
// short wait before a queue is taken to stand: a stall of the process
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
		q.windowStart, q.windowMin, q.windowOver = now, wait, false
	case el >= q.interval:
		if q.windowMin > q.target {
			q.above++
		} else {
			q.above = 0
		}
		q.standing = q.above >= standingWindows || (q.standing && q.windowOver)
		if q.standing {
			q.retry = min(2*q.retry, maxRetryDelay)
		} else {
			q.retry = max(q.retry/2, overloadRetryDelay)
		}
		q.windowStart, q.windowMin, q.windowOver = now, wait, false
	default:
		q.windowMin = min(q.windowMin, wait)
	}
	q.windowOver = q.windowOver || wait > q.target
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
		Help: "Unary calls refused with RESOURCE_EXHAUSTED to shed load, by reason: inflight (--max-inflight calls were running), inflight_caller (the caller had --max-inflight-per-caller calls running) or queue_delay (the call waited for the CPU longer than --shed-queue-target while a queue stood).",
	}, []string{"reason"})
	delay := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "gatehouse_queue_delay_seconds",
		Help:    "Time from a unary call's arrival on its connection to its handler's start (queueing for the CPU), health checks excluded.",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
	})
	shed = register(m.Registry, shed)
	delay = register(m.Registry, delay)
	return &shedMetrics{
		shed: map[string]prometheus.Counter{shedInflight: shed.WithLabelValues(shedInflight), shedQueueDelay: shed.WithLabelValues(shedQueueDelay),
			shedInflightCaller: shed.WithLabelValues(shedInflightCaller)},
		queueDelay: delay,
	}
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

func (m *shedMetrics) observeDelay(d time.Duration) {
	if m != nil {
		m.queueDelay.Observe(d.Seconds())
	}
}

// queueOverloaded is the status of a call shed because it queued too long,
// telling the caller to retry after retry.
func queueOverloaded(wait, limit, retry time.Duration) error {
	st := status.Newf(codes.ResourceExhausted, "server is overloaded: the call waited %s for the CPU (limit %s); retry with backoff",
		wait.Round(time.Microsecond), limit)
	st, _ = st.WithDetails(
		&errdetails.ErrorInfo{Reason: reasonOverloaded, Domain: errorDomain, Metadata: map[string]string{
			"shed": shedQueueDelay, "queue_delay_us": strconv.FormatInt(wait.Microseconds(), 10)}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)},
	)
	return st.Err()
}
