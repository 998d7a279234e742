package server

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/errs"

	"google.golang.org/grpc/peer"
)

// DefaultCallerCPUShare is the default of Limits.CallerCPUShare.
const DefaultCallerCPUShare = 0.1

// shedCallerCPU is the shed reason of a decision refused because its caller
// used more than its share of the CPU while the CPU was contended.
const shedCallerCPU = "caller_cpu"

// Tuning of callerCPU.
const (
	// callerCPUBurst is how much handler time a caller may spend at once
	// beyond its share (a token bucket's depth).
	callerCPUBurst = 50 * time.Millisecond
	// callerCPUWindow is how often the contention and the active callers
	// are measured.
	callerCPUWindow = 100 * time.Millisecond
	// callerCPUActive is how recently a caller must have made a decision
	// to count as active.
	callerCPUActive = time.Second
	// callerCPUIdle is how long an unused caller's bucket is kept.
	callerCPUIdle = 10 * time.Second
	// callerCPUContended is the share of the CPU the calls of all
	// callers must have used in the last window for the CPU to count as
	// contended.
	callerCPUContended = 0.5
	// callerCPUBusy is the share of its cores the process must have got
	// in the last window for the CPU to count as contended (with
	// callerCPUContended).
	callerCPUBusy = 0.75
	// callerCPUMaxHold is the longest a call of a caller past its share
	// is held for its bucket to refill before it runs, and
	// callerCPUMaxHeld how many of one caller's calls may be held at
	// once; past either the call is refused with RetryInfo.
	callerCPUMaxHold = 200 * time.Millisecond
	callerCPUMaxHeld = 32
	// callerCPUMaxHeldTotal bounds the calls held at once, all callers
	// together.
	callerCPUMaxHeldTotal = 1024
	// callerCPUMaxOverhead bounds what a call is charged for the work
	// outside the handlers: the process's other work (streams, the
	// replica's rebuilds, the sweeper) is not the calls'.
	callerCPUMaxOverhead = 100 * time.Microsecond
	// callerCPUCostDefault is what a caller's call is expected to cost
	// before one was measured.
	callerCPUCostDefault = 100 * time.Microsecond
	// maxCallerBuckets bounds the callers callerCPU keeps a bucket for;
	// past it a new caller is not held to a share until buckets expire.
	maxCallerBuckets = 1 << 16
)

// Verdicts of callerCPU.admit.
const (
	cpuAdmit  = iota // run now
	cpuHold          // run after the wait admit returns (the caller is past its share)
	cpuRefuse        // refuse, with the wait as RetryInfo
)

// callerCPU gives each caller (inflightKeyOf: an account, or a credential
// scoped to all accounts) a fair share of the CPU that calls use. Every
// unary call's cost is charged to its caller's token bucket: its handler's
// wall time less any wait for a revision (which costs no CPU), plus the
// decoding of a large request, plus what each call costs outside the
// handlers (the transport, the codec, the garbage collector: the CPU the
// process got in the last window that no handler was charged for, divided
// among the window's calls), so that a caller of many cheap calls pays for
// them too. A write is charged its transaction, its commit and its wait for
// the snapshot to reflect it (the rebuild it causes), not its wait for the
// store's writer. The bucket refills at the caller's share of the CPU
// the process got in the last callerCPUWindow (GOMAXPROCS cores on a
// machine of its own) up to callerCPUBurst; the share is the configured
// one or an equal share among the active callers (1/active), whichever is
// larger, so that two callers that both want the whole CPU get half each.
//
// While the CPU is contended (the process was busy and calls took at least
// callerCPUContended of its CPU, or decisions waited longer than the queue
// target), another caller is active and other calls are running, a call of a caller whose bucket is
// empty is held until the bucket has refilled (its expected cost reserved,
// so that a caller's held calls are let go one by one at its share's pace)
// if that is within callerCPUMaxHold (a session or admin call: for at
// most that long, then it runs), the call's deadline allows it and
// fewer than callerCPUMaxHeld of the caller's calls (and
// callerCPUMaxHeldTotal of all) are held; otherwise it
// is refused RESOURCE_EXHAUSTED with a RetryInfo of that time. Holding
// rather than refusing is what bounds a caller that keeps calling without
// waiting out its RetryInfo: a refusal costs the server nearly what a cheap
// call does, and its caller sends the next one at once, while a held call
// costs a goroutine and keeps its caller waiting (as Kubernetes' API
// Priority and Fairness queues a flow's requests rather than rejecting
// them while its queue has room).
//
// The per-caller limit on concurrent calls (callerInflight) bounds how many
// calls a caller has running, not what they cost: four callers sending
// decisions that each cost a millisecond (the largest element against
// rules that read all of it) took most of one core from twenty callers
// whose decisions cost 50µs, because Go's scheduler shares the CPU by turn,
// not by time. The bucket bounds each caller's time instead; a caller
// alone, or on an idle daemon, may use it all.
type callerCPU struct {
	share float64
	rate  float64 // ns of cost a caller earns per ns: its share of the CPU the process got
	// overhead is what a call costs outside the handlers, estimated every
	// window (measure).
	overhead time.Duration
	// procCPU reads the CPU time the process has used (selfCPUTime).
	procCPU func() time.Duration
	// queued, when set, reports whether decisions waited longer than the
	// queue target lately (admissionGate.contended): the CPU is then
	// contended whatever share of it decisions used.
	queued   func(time.Time) bool
	lastProc time.Duration

	mu        sync.Mutex
	buckets   map[inflightKey]*cpuBucket
	held      int // calls held, all callers together
	windowAt  time.Time
	contended bool
	active    int
	// busy mirrors contended for readers without the lock (the tap).
	busy atomic.Bool
	// conns records, per connection, the share of its decisions refused
	// for their callers' CPU while the CPU was contended (noteConn).
	conns map[string]*connRefusals

	used  atomic.Int64 // handler ns charged since windowAt
	calls atomic.Int64 // calls charged since windowAt
}

type cpuBucket struct {
	tokens time.Duration
	at     time.Time     // tokens as of at
	seen   time.Time     // last call
	cost   time.Duration // what a call of the caller costs lately (moving average); 0: none measured
	held   int           // calls held for the bucket to refill
}

func newCallerCPU(share float64) *callerCPU {
	return &callerCPU{share: share, rate: share * float64(runtime.GOMAXPROCS(0)), procCPU: selfCPUTime,
		buckets: map[inflightKey]*cpuBucket{}, conns: map[string]*connRefusals{}}
}

// admit returns what to do with a call of k at now (cpuAdmit, cpuHold or
// cpuRefuse) and, when not cpuAdmit, how long the caller's bucket needs to
// refill: the hold, or the RetryInfo delay. With runAfterHold (session and
// admin calls, whose clients do not all retry) a call that may be held is
// held at most callerCPUMaxHold and then runs, however long its share
// needs. A held call's expected cost is
// reserved in the bucket and returned (prepaid), to be given to charge,
// and its end of hold reported with unhold. others says that other calls
// are running: without them nobody waits for what this call takes, and it
// runs whatever its share (a lone client calling one call at a time on a
// machine busy with other work). queued says that decisions wait for the
// CPU now (admissionGate.contended), which is contention too.
// A hold must end before deadline (zero: none).
func (c *callerCPU) admit(k inflightKey, now, deadline time.Time, others, queued, runAfterHold bool) (verdict int, wait, prepaid time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := now.Sub(c.windowAt); el >= callerCPUWindow || el < 0 {
		c.measure(now, el)
	}
	b := c.buckets[k]
	if b == nil {
		if len(c.buckets) >= maxCallerBuckets {
			return cpuAdmit, 0, 0
		}
		b = &cpuBucket{tokens: callerCPUBurst, at: now}
		c.buckets[k] = b
	}
	c.refill(b, now)
	b.seen = now
	if b.tokens >= 0 || !others || !(c.contended || queued) || c.active < 2 {
		return cpuAdmit, 0, 0
	}
	wait = time.Duration(float64(-b.tokens) / c.rate)
	if runAfterHold && b.held < callerCPUMaxHeld && c.held < callerCPUMaxHeldTotal {
		// Held for as long as may be, then run: within callerCPUMaxHold
		// and half of what is left of the call's deadline.
		wait = min(wait, callerCPUMaxHold)
		if !deadline.IsZero() {
			wait = min(wait, max(deadline.Sub(now)/2, 0))
		}
	}
	if b.held >= callerCPUMaxHeld || c.held >= callerCPUMaxHeldTotal || wait > callerCPUMaxHold || !deadline.IsZero() && now.Add(wait).After(deadline) {
		return cpuRefuse, wait, 0
	}
	prepaid = b.cost
	if prepaid == 0 {
		prepaid = callerCPUCostDefault
	}
	b.held++
	c.held++
	b.tokens -= prepaid
	return cpuHold, wait, prepaid
}

// unhold ends the hold of one of k's calls (admit returned cpuHold),
// giving back refund of what it reserved when the call does not run.
func (c *callerCPU) unhold(k inflightKey, refund time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.buckets[k]; b != nil && b.held > 0 {
		b.held--
		c.held--
		b.tokens += refund
	}
}

func (c *callerCPU) refill(b *cpuBucket, now time.Time) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(callerCPUBurst, b.tokens+time.Duration(float64(el)*c.rate))
		b.at = now
	}
}

// measure ends a window of length el at now: whether the CPU was
// contended, how many callers are active; idle buckets are dropped.
func (c *callerCPU) measure(now time.Time, el time.Duration) {
	used := c.used.Swap(0)
	proc := c.procCPU()
	got := proc - c.lastProc // the CPU the process got in the window
	c.lastProc = proc
	capacity := float64(el) * float64(runtime.GOMAXPROCS(0))
	// The CPU is contended when the process was busy (it got at least
	// three quarters of its cores) and calls took at least half of what it
	// got, or decisions waited longer than the queue target (queued): a
	// caller is held to its share only while others would use the CPU it
	// takes, not on a daemon with cores to spare. Shares are
	// of what it got: on a machine whose other work leaves the daemon a
	// third of a core, a caller's tenth is a tenth of that third.
	calls := c.calls.Swap(0)
	// What the calls cost outside their handlers: the CPU the process got
	// that no handler was charged for, per call (a moving average, so that
	// a window with a garbage collection does not swing it).
	if el > 0 && el < 2*callerCPUWindow && calls > 0 {
		per := time.Duration(max(int64(got)-used, 0) / calls)
		c.overhead += (min(per, callerCPUMaxOverhead) - c.overhead) / 4
	}
	charged := float64(used) + float64(calls)*float64(c.overhead)
	c.contended = el > 0 && el < 2*callerCPUWindow && float64(got) >= callerCPUBusy*capacity &&
		charged >= callerCPUContended*float64(got) || c.queued != nil && c.queued(now)
	c.active = 0
	for k, b := range c.buckets {
		switch idle := now.Sub(b.seen); {
		case idle < callerCPUActive:
			if k.kind != keyConn {
				c.active++
			}
		case idle > callerCPUIdle && b.held == 0:
			delete(c.buckets, k)
		}
	}
	if el > 0 && el < 2*callerCPUWindow && got > 0 {
		share := c.share
		if c.active > 0 {
			share = max(share, 1/float64(c.active))
		}
		c.rate = share * max(float64(got)/float64(el), 0.1)
	}
	c.busy.Store(c.contended)
	for id, r := range c.conns {
		// Each window halves the record, so that a connection's past
		// fades within a second; without contention it is dropped.
		r.refused, r.held, r.admitted = r.refused/2, r.held/2, r.admitted/2
		if !c.contended || r.refused+r.held+r.admitted < 1 {
			delete(c.conns, id)
		}
	}
	c.windowAt = now
}

// connRefusals is a connection's recent decisions: how many its callers'
// CPU shares refused, held and admitted (decayed), and the last retry told.
type connRefusals struct {
	refused, held, admitted float64
	retry                   time.Duration
	acc                     float64
}

// maxConnRefusal bounds the share of a connection's decisions the tap
// refuses: one in ten still reaches its caller's bucket, so that a caller
// whose share has refilled is served again.
const maxConnRefusal = 0.9

// noteConn records what a decision on connection id got from its caller's
// CPU share (admit's verdict; wait, the retry told a refused one).
func (c *callerCPU) noteConn(id string, verdict int, wait time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.conns[id]
	if r == nil {
		if len(c.conns) >= maxConnRecords {
			return
		}
		r = &connRefusals{}
		c.conns[id] = r
	}
	switch verdict {
	case cpuRefuse:
		r.refused++
		r.retry = wait
	case cpuHold:
		r.held++
	default:
		r.admitted++
	}
}

// maxConnRecords bounds the connections noteConn tracks.
const maxConnRecords = 4096

// refuseConn reports whether the tap refuses the next decision on
// connection id: while the CPU is contended, a share of its decisions as
// large as the share its callers' buckets refused lately (at most
// maxConnRefusal), spread evenly. That share is large only for a client
// that keeps calling after being told to wait (a client that honours
// RetryInfo is refused once per wait): its decisions are then refused
// before their requests are read and decoded, which a refusal by the
// caller's bucket, after decoding, cannot spare. Other callers on the same
// connection share its fate; callers on other connections do not.
func (c *callerCPU) refuseConn(id string) (bool, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.conns[id]
	if r == nil || r.refused == 0 {
		return false, 0
	}
	// Refuse whenever the refused shares add up to a whole decision:
	// deterministic, evenly spread.
	r.acc += min(r.refused/(r.refused+r.held+r.admitted), maxConnRefusal)
	if r.acc >= 1 {
		r.acc--
		return true, r.retry
	}
	return false, 0
}

// connOverShare reports whether decisions on connection id were refused
// or held for their callers' CPU share lately (noteConn).
func (c *callerCPU) connOverShare(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.conns[id]
	return r != nil && r.refused+r.held >= 1
}

// contendedNow reports whether the CPU was contended in the last window.
func (c *callerCPU) contendedNow() bool { return c.busy.Load() }

// charge adds a call's cost d (its handler's, and its decoding's) to k's
// bucket, with what a call costs outside the handlers; prepaid is what admit
// reserved for it (a held call), which is given back. A connection's
// (keyConn) is the same cost again, not counted twice in the CPU's use.
func (c *callerCPU) charge(k inflightKey, d, prepaid time.Duration) {
	d = max(d, 0)
	if k.kind != keyConn {
		c.used.Add(int64(d))
		c.calls.Add(1)
	}
	c.mu.Lock()
	if b := c.buckets[k]; b != nil {
		d += c.overhead
		if b.cost == 0 {
			b.cost = d
		} else {
			b.cost += (d - b.cost) / 8
		}
		// A caller runs into debt only while the CPU is contended, and
		// by at most a burst beyond what its held calls reserved: time
		// used while nobody waited, or one long call, is not held
		// against it for long.
		b.tokens += prepaid
		floor := time.Duration(0)
		if c.contended {
			floor = -callerCPUBurst - time.Duration(b.held)*b.cost
		}
		b.tokens = max(b.tokens-d, min(b.tokens, floor))
	}
	c.mu.Unlock()
}

// callerCPUOverloaded is the status of a decision refused because its
// caller used its share of the CPU.
func callerCPUOverloaded(k inflightKey, share float64, retry time.Duration) error {
	retry = min(max(retry, overloadRetryDelay), maxRetryDelay)
	e := errs.Refuse(errs.ResourceExhausted, reasonOverloaded, map[string]string{"shed": shedCallerCPU, "scope": "caller", "limit": fmt.Sprint(share)},
		"%s used more than its share (%s) of the server's CPU while other callers waited; retry after %s",
		k, strconv.FormatFloat(share, 'g', -1, 64), retry.Round(time.Millisecond))
	e.RetryAfter = retry
	return e
}

// addIdleWait records, in the arrival stamp of ctx's call, time the
// handler spent waiting without using the CPU — for a revision, for the
// store's writer, for a commit's I/O — so that its caller is not charged
// for it (callerCPU).
func addIdleWait(ctx context.Context, d time.Duration) {
	if a, ok := ctx.Value(arrivalKey{}).(*arrival); ok {
		a.waited += d
	}
}

// addDecodeCost records, in the arrival stamp of ctx's call, how long
// decoding its request took (takeDecodeCost), which its caller is charged
// with its handler time.
func addDecodeCost(ctx context.Context, d time.Duration) {
	if a, ok := ctx.Value(arrivalKey{}).(*arrival); ok {
		a.decoded += d
	}
}

// decodeCost returns what addDecodeCost recorded for ctx's call.
func decodeCost(ctx context.Context) time.Duration {
	if a, ok := ctx.Value(arrivalKey{}).(*arrival); ok {
		return a.decoded
	}
	return 0
}

// idleWait returns what addIdleWait recorded for ctx's call.
func idleWait(ctx context.Context) time.Duration {
	if a, ok := ctx.Value(arrivalKey{}).(*arrival); ok {
		return a.waited
	}
	return 0
}

// connKey returns the key of the connection of ctx's call (its peer
// address), or the zero key.
func connKey(ctx context.Context) inflightKey {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return inflightKey{keyConn, p.Addr.String()}
	}
	return inflightKey{}
}

// Costs of decoding large requests, filed by the codec under the decoded
// message and taken by the limiter (takeDecodeCost), which charges them to
// the caller with its handler time: decoding the largest element costs
// more than deciding on it. Only requests over decodeTimedAbove bytes are
// timed; decoding a small one costs microseconds, and the common case
// (nothing filed) costs one atomic load.
var (
	decodeCosts     sync.Map // message → time.Duration
	decodeCostsHeld atomic.Int64
)

const decodeTimedAbove = 8 << 10

func fileDecodeCost(msg any, d time.Duration) {
	decodeCostsHeld.Add(1)
	if _, loaded := decodeCosts.Swap(msg, d); loaded {
		decodeCostsHeld.Add(-1)
	}
}

func takeDecodeCost(msg any) time.Duration {
	if msg == nil || decodeCostsHeld.Load() == 0 {
		return 0
	}
	if d, ok := decodeCosts.LoadAndDelete(msg); ok {
		decodeCostsHeld.Add(-1)
		return d.(time.Duration)
	}
	return 0
}

// selfCPUTime returns the CPU time (user and system) this process has used.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
