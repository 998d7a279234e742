package server

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Policy bytes one caller's WatchSessionPolicy streams may send.
//
// Watches of one session share one encoded policy, but each stream still
// copies it through HTTP/2 framing and the socket: 256 watches on a
// session of an account with 10 000 allowlist entries (a 680 KB policy)
// made the daemon write 175 MB at once, which took seconds of its CPU from
// every other tenant. Each caller (inflightKeyOf: an account, or a
// credential scoped to all accounts) may send policy messages at
// PolicyStreamBytesPerSecond, with bursts of PolicyStreamBurstBytes; a
// stream whose caller is past it waits before it sends (its watcher gets
// the policy later; nothing is refused), counted in
// gatehouse_policy_stream_throttled_total.
//
// While decisions wait for the CPU longer than the queue target
// (admissionGate.contended), each caller's policy streams are held to
// PolicyStreamContendedBytesPerSecond as well: a watcher gets its policy
// later rather than the decisions of every tenant waiting behind the
// framing of its bytes (make hostile: 256 watchers next to the other
// attacks took a normal tenant's p99 from 2x to 10x its p99 alone).
const (
	PolicyStreamBytesPerSecond          = 32 << 20
	PolicyStreamBurstBytes              = 4 << 20
	PolicyStreamContendedBytesPerSecond = 4 << 20
)

// streamBytes holds each caller's policy-byte buckets: the one always in
// force and the one in force while decisions queue.
type streamBytes struct {
	mu        sync.Mutex
	callers   map[inflightKey]*callerStreamBytes
	throttled prometheus.Counter // nil without metrics
	// contended, when set, reports whether decisions wait longer than the
	// queue target (admissionGate.contended).
	contended func(time.Time) bool
}

type callerStreamBytes struct {
	always, contended *rate.Limiter
}

// maxStreamByteCallers bounds the buckets kept; past it the buckets are
// dropped and start afresh (full), which only ever lets more through.
const maxStreamByteCallers = 10000

func newStreamBytes(m *Metrics) *streamBytes {
	sb := &streamBytes{callers: map[inflightKey]*callerStreamBytes{}}
	if m != nil {
		sb.throttled = register(m.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_policy_stream_throttled_total",
			Help: "WatchSessionPolicy messages that waited because their caller's streams had sent more policy bytes than their rate allows.",
		}))
	}
	return sb
}

// wait blocks until k may send n more bytes, or ctx ends.
func (sb *streamBytes) wait(ctx context.Context, k inflightKey, n int) error {
	sb.mu.Lock()
	lim := sb.callers[k]
	if lim == nil {
		if len(sb.callers) >= maxStreamByteCallers {
			clear(sb.callers)
		}
		lim = &callerStreamBytes{always: rate.NewLimiter(PolicyStreamBytesPerSecond, PolicyStreamBurstBytes),
			contended: rate.NewLimiter(PolicyStreamContendedBytesPerSecond, PolicyStreamBurstBytes)}
		sb.callers[k] = lim
	}
	sb.mu.Unlock()
	counted := false
	throttle := func(l *rate.Limiter, chunk int) error {
		if l.AllowN(time.Now(), chunk) {
			return nil
		}
		if !counted && sb.throttled != nil {
			sb.throttled.Inc()
		}
		counted = true
		return l.WaitN(ctx, chunk)
	}
	for n > 0 {
		chunk := min(n, PolicyStreamBurstBytes)
		if err := throttle(lim.always, chunk); err != nil {
			return err
		}
		if sb.contended != nil && sb.contended(time.Now()) {
			if err := throttle(lim.contended, chunk); err != nil {
				return err
			}
		}
		n -= chunk
	}
	return nil
}
