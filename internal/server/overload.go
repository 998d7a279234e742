package server

import (
	"context"
	"strconv"
	"strings"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// Defaults of Limits.
const (
	DefaultMaxRecvMsgSize    = 4 << 20
	DefaultMaxInflight       = 1024
	DefaultDecisionTimeout   = time.Second
	DefaultKeepaliveMinTime  = 10 * time.Second
	DefaultMaxConnectionIdle = 15 * time.Minute
	DefaultKeepaliveTime     = time.Minute
	DefaultKeepaliveTimeout  = 20 * time.Second
)

// reasonOverloaded is the ErrorInfo reason of a call shed because too many
// calls are in flight.
const reasonOverloaded = "OVERLOADED"

// overloadRetryDelay is the RetryInfo delay suggested to a shed caller.
const overloadRetryDelay = 50 * time.Millisecond

// Limits bound what callers can make one server do. A zero field takes its
// default.
type Limits struct {
	// MaxRecvMsgSize is the largest request message accepted, in bytes
	// (default 4 MiB). gRPC refuses a larger one with RESOURCE_EXHAUSTED
	// before it is decoded.
	MaxRecvMsgSize int
	// MaxInflight is how many unary calls may run at once (default 1024).
	// Decisions leave their handler within microseconds, so this bounds
	// slow calls, not a CPU-bound queue; QueueTarget bounds that.
	// The next one is refused at once with RESOURCE_EXHAUSTED (ErrorInfo
	// reason OVERLOADED, RetryInfo) instead of waiting in a queue. Streams
	// have pools of their own (StreamLimits, streamlimit.go), so long-lived
	// watches cannot starve decisions. Health checks are never refused.
	MaxInflight int
	// MaxInflightPerCaller is how many of those one caller may have
	// running at once, so that one tenant cannot fill the pool: an account
	// for callers scoped to one (all its credentials together), the
	// credential for callers scoped to all accounts; without
	// authentication, the account the request names (see inflightKeyOf).
	// Zero takes the default, a quarter of MaxInflight; negative means no
	// per-caller share. A call past it is refused at once like one past
	// MaxInflight (ErrorInfo metadata shed=inflight_caller, scope=caller).
	MaxInflightPerCaller int
	// QueueTarget and QueueInterval bound the queue of decisions
	// (DecisionService calls, the hot path) in front of the CPU, from a
	// call's arrival on its connection to its handler's start (the
	// request's reading and decoding included, microseconds for a
	// decision; see arrival). The admission gate (admissionGate) lets in
	// as many decisions at once as the CPU serves within QueueTarget
	// (default 3ms), a limit it adapts with every decision's wait, and
	// refuses the others on arrival, connections over their share of the
	// work in flight first; its RetryInfo delay adapts every QueueInterval
	// (default 100ms). Behind it, once a queue stands anyway (three
	// QueueIntervals in a row in each of which most calls waited longer
	// than QueueTarget), every decision that waited longer than
	// QueueTarget is shed, until an interval without such a wait (see
	// queueShedder). A refused call gets RESOURCE_EXHAUSTED (ErrorInfo
	// reason OVERLOADED, metadata shed=queue_delay, early=true when
	// refused on arrival; RetryInfo). Health checks are never shed. A
	// negative QueueTarget turns both off.
	QueueTarget   time.Duration
	QueueInterval time.Duration
	// GateMinInflight is the number of decisions in flight below which
	// the admission gate refuses no caller within its CPU share (0:
	// DefaultGateMinInflight; negative: none, the gate's limit alone).
	GateMinInflight int
	// CallerCPUShare is the share of the CPU (of GOMAXPROCS cores) one
	// caller's unary calls may use while the CPU is contended and other
	// callers are active (default DefaultCallerCPUShare, a tenth), or an
	// equal share among the active callers when that is larger; a call of
	// a caller past it is held until the share has refilled (up to
	// callerCPUMaxHold), or refused with RESOURCE_EXHAUSTED (ErrorInfo
	// metadata shed=caller_cpu, scope=caller; RetryInfo: when its share
	// has refilled). See callerCPU. Negative turns it off.
	CallerCPUShare float64
	// DecisionTimeout is the deadline given to a DecisionService call whose
	// caller set none (default 1s), so that a decision waiting for a
	// min_revision cannot hold a slot for long.
	DecisionTimeout time.Duration
	// KeepaliveMinTime is the shortest interval between client keepalive
	// pings the server tolerates (default 10s), with or without calls in
	// flight; a client that pings more often is disconnected with GOAWAY
	// "too_many_pings".
	KeepaliveMinTime time.Duration
	// MaxConnectionIdle closes a connection that has had no call for that
	// long (default 15m); clients reconnect transparently.
	MaxConnectionIdle time.Duration
	// KeepaliveTime is how long a connection may be silent before the
	// server pings it (default 1m), and KeepaliveTimeout how long the
	// server waits for the answer before it closes the connection (default
	// 20s), so that dead peers do not hold resources.
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxRecvMsgSize <= 0 {
		l.MaxRecvMsgSize = DefaultMaxRecvMsgSize
	}
	if l.MaxInflight <= 0 {
		l.MaxInflight = DefaultMaxInflight
	}
	if l.MaxInflightPerCaller == 0 {
		l.MaxInflightPerCaller = max(1, l.MaxInflight/4)
	}
	if l.QueueTarget == 0 {
		l.QueueTarget = DefaultQueueTarget
	}
	if l.CallerCPUShare == 0 {
		l.CallerCPUShare = DefaultCallerCPUShare
	}
	def(&l.QueueInterval, DefaultQueueInterval)
	def(&l.DecisionTimeout, DefaultDecisionTimeout)
	def(&l.KeepaliveMinTime, DefaultKeepaliveMinTime)
	def(&l.MaxConnectionIdle, DefaultMaxConnectionIdle)
	def(&l.KeepaliveTime, DefaultKeepaliveTime)
	def(&l.KeepaliveTimeout, DefaultKeepaliveTimeout)
	return l
}

// serverOptions returns the gRPC options that enforce l: message size,
// keepalive, the tap that stamps each call's arrival, and the interceptors
// that shed load and give decisions a deadline. They come after the
// server's other interceptors, so a shed call is still logged. m, when
// set, receives the shedding metrics. sessionAccount returns the account
// of a session ("" when unknown), for the per-caller share of callers
// without a credential. The admission gate is returned too (nil when off).
func (l Limits) serverOptions(m *Metrics, sessionAccount func(context.Context, string) string) ([]grpc.ServerOption, *admissionGate) {
	l = l.withDefaults()
	lim := &limiter{
		unary:          make(chan struct{}, l.MaxInflight),
		metrics:        newShedMetrics(m),
		sessionAccount: sessionAccount,
	}
	if l.MaxInflightPerCaller > 0 && l.MaxInflightPerCaller < l.MaxInflight {
		lim.perCaller = newCallerInflight(l.MaxInflightPerCaller)
	}
	opts := []grpc.ServerOption{}
	if l.QueueTarget > 0 {
		lim.queue = newQueueShedder(l.QueueTarget, l.QueueInterval)
		lim.gate = newAdmissionGate(l.QueueTarget, l.QueueInterval, lim.metrics.gateLimit())
		if l.GateMinInflight != 0 {
			lim.gate.minInflight = max(l.GateMinInflight, 0)
		}
	}
	if l.CallerCPUShare > 0 {
		lim.cpu, lim.cpuShare = newCallerCPU(l.CallerCPUShare), l.CallerCPUShare
		if lim.gate != nil {
			lim.cpu.queued = lim.gate.contended
		}
	}
	if lim.queue != nil || lim.cpu != nil {
		opts = append(opts, grpc.InTapHandle(lim.tap))
	}
	return append(opts,
		grpc.MaxRecvMsgSize(l.MaxRecvMsgSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             l.KeepaliveMinTime,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: l.MaxConnectionIdle,
			Time:              l.KeepaliveTime,
			Timeout:           l.KeepaliveTimeout,
		}),
		grpc.ChainUnaryInterceptor(lim.unaryInterceptor),
	), lim.gate
}

// limiter is a counting semaphore (a buffered channel: a send acquires a
// slot, a receive releases it) that is only ever tried, never waited on.
// Streams are limited by streamLimiter.
type limiter struct {
	unary chan struct{}
	// queue sheds unary calls that queued too long, gate bounds the
	// decisions in flight from their arrival; nil when off.
	queue   *queueShedder
	gate    *admissionGate
	metrics *shedMetrics
	// perCaller holds each caller's share of unary; nil when off.
	perCaller      *callerInflight
	sessionAccount func(context.Context, string) string
	// cpu holds each caller's share of the CPU decisions use; nil when
	// off.
	cpu      *callerCPU
	cpuShare float64
}

var (
	healthPrefix   = "/" + healthpb.Health_ServiceDesc.ServiceName + "/"
	decisionPrefix = "/" + gatehousev1.DecisionService_ServiceDesc.ServiceName + "/"
)

func (l *limiter) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, healthPrefix) {
		return handler(ctx, req)
	}
	decision := strings.HasPrefix(info.FullMethod, decisionPrefix)
	a, _ := ctx.Value(arrivalKey{}).(*arrival)
	var now time.Time
	if l.queue != nil || l.cpu != nil {
		now = time.Now()
	}
	if a != nil && a.done != nil {
		// The decision's cost weighs its connection's work in the
		// gate's fairness: its handler's time but waits for a
		// revision, and the decoding of a large request.
		defer func() { a.done(time.Since(now) - a.waited + a.decoded) }()
	}
	if a != nil && a.gated {
		l.gate.observe(a.ticket, now)
	}
	if l.queue != nil {
		wait := queueWait(ctx, now)
		l.metrics.observeDelay(wait)
		// Only decisions are shed by queue delay, and of those the gate
		// let in, only those of connections over their share: the
		// gate bounds the queue, and a caller within its share is not
		// refused for others' load.
		if decision {
			if ok, limit, retry := l.queue.admit(now, wait); !ok && (a == nil || !a.gated || !a.ticket.within) {
				l.metrics.countShed(shedQueueDelay)
				return nil, queueOverloaded(wait, limit, jitter(retry))
			}
		}
	}
	var k inflightKey
	if l.perCaller != nil || l.cpu != nil {
		k = inflightKeyOf(ctx, req, l.sessionAccount)
	}
	if l.cpu != nil && k.kind != 0 {
		// Decisions that wait longer than the queue target are
		// contention too, whatever share of the CPU calls used. Either
		// holds a caller back only while other calls are in flight (in
		// a handler, or decisions arrived and waiting): a lone caller
		// whose calls wait for a CPU that other processes hold takes
		// nobody's share.
		others := len(l.unary) > 0
		if !others && l.gate != nil {
			// Decisions that arrived and wait for the CPU count too: on
			// a busy core they are queued, not in a handler.
			n := l.gate.inflight()
			if a != nil && a.gated {
				n-- // this one
			}
			others = n > 0
		}
		queued := l.gate != nil && l.gate.contended(now)
		deadline, _ := ctx.Deadline()
		verdict, wait, prepaid := l.cpu.admit(k, now, deadline, others, queued, !decision)
		if decision && l.cpu.contendedNow() {
			// The connection's record lets the tap refuse most decisions
			// of a connection that carries only callers refused for
			// their share before their requests are read, and the gate
			// let its decisions in after others'.
			if ck := connKey(ctx); ck.kind != 0 {
				l.cpu.noteConn(ck.id, verdict, wait)
			}
		}
		switch verdict {
		case cpuRefuse:
			l.metrics.countShed(shedCallerCPU)
			return nil, callerCPUOverloaded(k, l.cpuShare, jitter(wait))
		case cpuHold:
			// A held call takes no CPU: it leaves the admission gate
			// while it waits (its cost unmeasured).
			if a != nil && a.done != nil {
				a.done(0)
			}
			err := sleepCtx(ctx, wait)
			held := time.Since(now)
			if err != nil {
				l.cpu.unhold(k, prepaid)
				return nil, err // the caller's deadline or cancellation (status.go maps it)
			}
			l.cpu.unhold(k, 0)
			l.metrics.observeHold(held)
			now = time.Now()
		}
		defer func() { l.cpu.charge(k, time.Since(now)-idleWait(ctx)+decodeCost(ctx), prepaid) }()
	}
	select {
	case l.unary <- struct{}{}:
	default:
		l.metrics.countShed(shedInflight)
		return nil, overloaded(cap(l.unary), "calls")
	}
	defer func() { <-l.unary }()
	if l.perCaller != nil {
		if k.kind != 0 {
			if !l.perCaller.acquire(k) {
				l.metrics.countShed(shedInflightCaller)
				return nil, callerOverloaded(k, int(l.perCaller.limit), cap(l.unary))
			}
			defer l.perCaller.release(k)
		}
	}
	// DecisionTimeout is applied by snapshotAt, where a decision waits,
	// not here: a timer and a context per call cost more than the decision.
	return handler(ctx, req)
}

// sleepCtx waits d, or until ctx ends (its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// overloaded is the status of a shed call.
func overloaded(limit int, what string) error {
	e := errs.Refuse(errs.ResourceExhausted, reasonOverloaded, map[string]string{"limit": strconv.Itoa(limit)},
		"server is at its limit of %d concurrent %s; retry with backoff", limit, what)
	e.RetryAfter = overloadRetryDelay
	return e
}
