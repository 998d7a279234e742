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
const DefaultCallerCPUShare = 0.25

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
	// callerCPUContended is the share of the CPU the decisions of all
	// callers must have used in the last window for the CPU to count as
	// contended.
	callerCPUContended = 0.5
)

// callerCPU gives each caller (inflightKeyOf: an account, or a credential
// scoped to all accounts) a fair share of the CPU that decisions use. Every
// decision's cost (its handler's wall time less any wait for a revision,
// which costs no CPU, plus the decoding of a large request) is charged to
// its caller's token bucket, which refills at the share of the CPU the
// process got in the last callerCPUWindow (GOMAXPROCS cores on a machine of
// its own) up to callerCPUBurst. While the CPU is contended (the process
// was busy and decisions took at least callerCPUContended of its CPU) and
// another caller is active, a caller whose bucket is empty is refused
// RESOURCE_EXHAUSTED with a RetryInfo of the time its bucket needs to
// refill.
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
	rate  float64 // ns of handler time a caller earns per ns: share of the CPU the process got
	// procCPU reads the CPU time the process has used (selfCPUTime).
	procCPU func() time.Duration
	// queued, when set, reports whether decisions waited longer than the
	// queue target lately (admissionGate.contended): the CPU is then
	// contended whatever share of it decisions used.
	queued   func(time.Time) bool
	lastProc time.Duration

	mu        sync.Mutex
	buckets   map[inflightKey]*cpuBucket
	windowAt  time.Time
	contended bool
	active    int
	// busy mirrors contended for readers without the lock (the tap).
	busy atomic.Bool
	// conns records, per connection, the share of its decisions refused
	// for their callers' CPU while the CPU was contended (noteConn).
	conns map[string]*connRefusals

	used atomic.Int64 // handler ns charged since windowAt
}

type cpuBucket struct {
	tokens time.Duration
	at     time.Time // tokens as of at
	seen   time.Time // last decision
}

func newCallerCPU(share float64) *callerCPU {
	return &callerCPU{share: share, rate: share * float64(runtime.GOMAXPROCS(0)), procCPU: selfCPUTime,
		buckets: map[inflightKey]*cpuBucket{}, conns: map[string]*connRefusals{}}
}

// admit reports whether k may start a decision at now, and when not, how
// long it should wait. queued says that decisions wait for the CPU now
// (admissionGate.contended), which is contention too.
func (c *callerCPU) admit(k inflightKey, now time.Time, queued bool) (bool, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := now.Sub(c.windowAt); el >= callerCPUWindow || el < 0 {
		c.measure(now, el)
	}
	b := c.buckets[k]
	if b == nil {
		b = &cpuBucket{tokens: callerCPUBurst, at: now}
		c.buckets[k] = b
	}
	c.refill(b, now)
	b.seen = now
	if b.tokens >= 0 || !(c.contended || queued) || c.active < 2 {
		return true, 0
	}
	return false, time.Duration(float64(-b.tokens) / c.rate)
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
	// The CPU is contended when the process was busy (it got at least a
	// fifth of its cores, or a machine shared with other work gave it
	// less than it wanted) and decisions took at least half of what it
	// got. Shares are of what it got: on a machine whose other work
	// leaves the daemon a third of a core, a caller's quarter is a quarter
	// of that third.
	c.contended = el > 0 && el < 2*callerCPUWindow && float64(got) >= 0.2*capacity &&
		float64(used) >= callerCPUContended*float64(got) || c.queued != nil && c.queued(now)
	if el > 0 && el < 2*callerCPUWindow && got > 0 {
		c.rate = c.share * max(float64(got)/float64(el), 0.1)
	}
	c.busy.Store(c.contended)
	c.active = 0
	for k, b := range c.buckets {
		switch idle := now.Sub(b.seen); {
		case idle < callerCPUActive:
			if k.kind != keyConn {
				c.active++
			}
		case idle > callerCPUIdle:
			delete(c.buckets, k)
		}
	}
	for id, r := range c.conns {
		// Each window halves the record, so that a connection's past
		// fades within a second; without contention it is dropped.
		r.refused, r.admitted = r.refused/2, r.admitted/2
		if !c.contended || r.refused+r.admitted < 1 {
			delete(c.conns, id)
		}
	}
	c.windowAt = now
}

// connRefusals is a connection's recent decisions: how many its callers'
// CPU shares refused and admitted (decayed), and the last retry told.
type connRefusals struct {
	refused, admitted float64
	retry             time.Duration
	acc               float64
}

// maxConnRefusal bounds the share of a connection's decisions the tap
// refuses: one in ten still reaches its caller's bucket, so that a caller
// whose share has refilled is served again.
const maxConnRefusal = 0.9

// noteConn records that a decision on connection id was refused (or
// admitted) for its caller's CPU share.
func (c *callerCPU) noteConn(id string, refused bool, retry time.Duration) {
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
	if refused {
		r.refused++
		r.retry = retry
	} else {
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
	r.acc += min(r.refused/(r.refused+r.admitted), maxConnRefusal)
	if r.acc >= 1 {
		r.acc--
		return true, r.retry
	}
	return false, 0
}

// connOverShare reports whether decisions on connection id were refused
// for their callers' CPU share lately (noteConn).
func (c *callerCPU) connOverShare(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.conns[id]
	return r != nil && r.refused >= 1
}

// contendedNow reports whether the CPU was contended in the last window.
func (c *callerCPU) contendedNow() bool { return c.busy.Load() }

// charge adds a decision's cost to k's bucket; a connection's (keyConn)
// is the same cost again, not counted twice in the CPU's use.
func (c *callerCPU) charge(k inflightKey, d time.Duration) {
	if d <= 0 {
		return
	}
	if k.kind != keyConn {
		c.used.Add(int64(d))
	}
	c.mu.Lock()
	if b := c.buckets[k]; b != nil {
		// A caller runs into debt only while the CPU is contended, and
		// by at most a burst: time used while nobody waited, or one
		// long call, is not held against it for long.
		floor := time.Duration(0)
		if c.contended {
			floor = -callerCPUBurst
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

// addRevisionWait records, in the arrival stamp of ctx's call, time the
// handler spent waiting for a revision: it costs no CPU, so its caller is
// not charged for it (callerCPU).
func addRevisionWait(ctx context.Context, d time.Duration) {
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

// revisionWait returns what addRevisionWait recorded for ctx's call.
func revisionWait(ctx context.Context) time.Duration {
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
