package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Histogram records durations with a relative error below 1.6 % (64
// linear sub-buckets per power of two). The zero value is ready to use; a
// Histogram is not safe for concurrent use (give each caller its own and
// Merge them).
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    int64
	max    int64
}

const (
	histSub     = 64 // sub-buckets per power of two
	histBuckets = histSub + 40*histSub/2
)

func histIndex(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	exp := bits.Len64(uint64(v)) - 6 // v>>exp is in [32, 64)
	i := histSub + (exp-1)*histSub/2 + int(v>>exp) - histSub/2
	return min(i, histBuckets-1)
}

// histLower returns the smallest value of bucket i.
func histLower(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	i -= histSub
	exp := i/(histSub/2) + 1
	return int64(i%(histSub/2)+histSub/2) << exp
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	h.counts[histIndex(v)]++
	h.n++
	h.sum += v
	h.max = max(h.max, v)
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count returns the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Mean returns the mean duration.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / int64(h.n))
}

// Max returns the largest duration recorded.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Quantile returns the q-quantile (0 < q <= 1), as the midpoint of its
// bucket.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histLower(i), histLower(i+1)
			return time.Duration(min((lo+hi)/2, h.max))
		}
	}
	return time.Duration(h.max)
}

// Op is one call of a load phase. worker identifies the caller (0 …
// concurrency-1); seq counts that caller's calls.
type Op func(ctx context.Context, worker int, seq uint64) error

// Phase describes a timed run of an operation.
type Phase struct {
	Name        string
	Concurrency int
	Duration    time.Duration
	Op          Op
	// PerCall is how many decisions one call makes (1 unless batched).
	PerCall int
	// Progress, when set, is called about every interval with the
	// running totals.
	Progress func(p Progress)
	// ProgressEvery is the progress interval (default 500ms).
	ProgressEvery time.Duration
	// OnStart, when set, is called when the phase starts.
	OnStart func()
	// CPUClock, when set, reads a CPU-time counter (for example the
	// server process's); the phase records how much it advanced.
	CPUClock func() time.Duration
	// HonorShed makes a call refused to shed load (RESOURCE_EXHAUSTED,
	// see ShedOf) count as shed rather than failed; the caller then waits
	// the RetryInfo delay (RetryJitter) before its next call, as the Go
	// client does. Without it a shed call is an error.
	HonorShed bool
}

// Progress is a running total of a phase.
type Progress struct {
	Phase       string
	Concurrency int
	Elapsed     time.Duration
	Duration    time.Duration
	Calls       uint64
	Errors      uint64
}

// Result is the outcome of a phase (or of several merged).
type Result struct {
	Name        string
	Concurrency int
	PerCall     int
	Calls       uint64
	Errors      uint64
	FirstError  error
	Elapsed     time.Duration
	Latency     Histogram
	// Rounds is the number of phases merged into this result.
	Rounds int
	// CPU is how far Phase.CPUClock advanced during the phase.
	CPU time.Duration
	// Shed counts the calls refused to shed load (Phase.HonorShed) and
	// ShedLatency how long the refusals took; they are in Calls, not in
	// Errors or Latency.
	Shed        uint64
	ShedLatency Histogram
}

// CPUPerCall returns CPU divided by the calls made.
func (r *Result) CPUPerCall() time.Duration {
	if r.Calls == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Calls)
}

// Throughput returns successful calls per second (shed calls excluded).
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Calls-r.Errors-r.Shed) / r.Elapsed.Seconds()
}

// DecisionsPerSecond returns Throughput times PerCall.
func (r *Result) DecisionsPerSecond() float64 { return r.Throughput() * float64(max(r.PerCall, 1)) }

// Merge adds o (another round of the same phase) to r.
func (r *Result) Merge(o *Result) {
	if r.Rounds == 0 {
		*r = *o
		return
	}
	r.Calls += o.Calls
	r.Errors += o.Errors
	if r.FirstError == nil {
		r.FirstError = o.FirstError
	}
	r.Elapsed += o.Elapsed
	r.Latency.Merge(&o.Latency)
	r.Rounds += o.Rounds
	r.CPU += o.CPU
	r.Shed += o.Shed
	r.ShedLatency.Merge(&o.ShedLatency)
}

// RunPhase runs p.Op from p.Concurrency callers, each in a closed loop,
// until p.Duration has passed or ctx ends, and returns the calls made and
// their latencies. Errors count as calls; their latency is not recorded.
func RunPhase(ctx context.Context, p Phase) Result {
	conc := max(p.Concurrency, 1)
	// Calls still in flight long after the phase should have ended mean
	// a stuck server; give up on them.
	ctx, cancel := context.WithTimeout(ctx, p.Duration+30*time.Second)
	defer cancel()
	var calls, errs, shed atomic.Uint64
	var firstErr atomic.Pointer[error]
	hists := make([]Histogram, conc)
	shedHists := make([]Histogram, conc)
	if p.OnStart != nil {
		p.OnStart()
	}
	var cpu0 time.Duration
	if p.CPUClock != nil {
		cpu0 = p.CPUClock()
	}
	start := time.Now()
	deadline := start.Add(p.Duration)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &hists[w]
			for seq := uint64(0); ; seq++ {
				t0 := time.Now()
				if !t0.Before(deadline) || ctx.Err() != nil {
					return
				}
				err := p.Op(ctx, w, seq)
				if retry, ok := ShedOf(err); ok && p.HonorShed {
					shedHists[w].Record(time.Since(t0))
					shed.Add(1)
					calls.Add(1)
					wait := time.NewTimer(min(RetryJitter(retry), time.Until(deadline)))
					select {
					case <-wait.C:
					case <-ctx.Done():
						wait.Stop()
						return
					}
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				} else {
					h.Record(time.Since(t0))
				}
				calls.Add(1)
			}
		}()
	}
	done := make(chan struct{})
	var pwg sync.WaitGroup
	if p.Progress != nil {
		pwg.Add(1)
		every := p.ProgressEvery
		if every <= 0 {
			every = 500 * time.Millisecond
		}
		go func() {
			defer pwg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					p.Progress(Progress{Phase: p.Name, Concurrency: conc, Elapsed: time.Since(start), Duration: p.Duration,
						Calls: calls.Load(), Errors: errs.Load()})
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	pwg.Wait()
	r := Result{Name: p.Name, Concurrency: conc, PerCall: max(p.PerCall, 1), Calls: calls.Load(), Errors: errs.Load(),
		Elapsed: time.Since(start), Rounds: 1}
	if p.CPUClock != nil {
		r.CPU = p.CPUClock() - cpu0
	}
	if e := firstErr.Load(); e != nil {
		r.FirstError = *e
	}
	for i := range hists {
		r.Latency.Merge(&hists[i])
		r.ShedLatency.Merge(&shedHists[i])
	}
	r.Shed = shed.Load()
	return r
}

// Comparison is a subject measured against a baseline in alternating
// rounds at one concurrency.
type Comparison struct {
	Concurrency int
	Baseline    Result
	Subject     Result
	// Extra are the results of Compare's extra phases.
	Extra []Result
	// RoundRatios are the per-round subject/baseline throughput ratios,
	// which show how much the machine drifted during the run;
	// RoundP50Ratios and RoundP99Ratios the same for latency.
	RoundRatios    []float64
	RoundP50Ratios []float64
	RoundP99Ratios []float64
	// RoundCPURatios are the per-round subject/baseline ratios of CPU per
	// call (when both phases have a CPUClock).
	RoundCPURatios []float64
}

// Median returns the median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ThroughputRatio returns subject/baseline throughput (decisions per
// second when the subject is batched).
func (c *Comparison) ThroughputRatio() float64 {
	if b := c.Baseline.DecisionsPerSecond(); b > 0 {
		return c.Subject.DecisionsPerSecond() / b
	}
	return 0
}

// LatencyRatio returns the subject/baseline ratio of the q-quantile.
func (c *Comparison) LatencyRatio(q float64) float64 {
	if b := c.Baseline.Latency.Quantile(q); b > 0 {
		return float64(c.Subject.Latency.Quantile(q)) / float64(b)
	}
	return 0
}

// Compare runs baseline, subject and any extra phases in turn, rounds
// times each, for perPhase each time, rotating which goes first every
// round so that a machine that speeds up or slows down during the run
// favours none of them. Extra results (for example a second baseline) are
// in Comparison.Extra, in the order given.
func Compare(ctx context.Context, rounds int, perPhase time.Duration, baseline, subject Phase, extra ...Phase) Comparison {
	c := Comparison{Concurrency: subject.Concurrency, Extra: make([]Result, len(extra))}
	phases := append([]Phase{baseline, subject}, extra...)
	for r := range rounds {
		if ctx.Err() != nil {
			break
		}
		got := make([]Result, len(phases))
		for k := range phases {
			i := (k + r) % len(phases)
			p := phases[i]
			p.Duration = perPhase
			got[i] = RunPhase(ctx, p)
		}
		c.Baseline.Merge(&got[0])
		c.Subject.Merge(&got[1])
		for i := range extra {
			c.Extra[i].Merge(&got[2+i])
		}
		if b := got[0].DecisionsPerSecond(); b > 0 {
			c.RoundRatios = append(c.RoundRatios, got[1].DecisionsPerSecond()/b)
		}
		if b := got[0].Latency.Quantile(0.5); b > 0 {
			c.RoundP50Ratios = append(c.RoundP50Ratios, float64(got[1].Latency.Quantile(0.5))/float64(b))
		}
		if b := got[0].Latency.Quantile(0.99); b > 0 {
			c.RoundP99Ratios = append(c.RoundP99Ratios, float64(got[1].Latency.Quantile(0.99))/float64(b))
		}
		if b := got[0].CPUPerCall(); b > 0 && got[1].CPU > 0 {
			c.RoundCPURatios = append(c.RoundCPURatios, float64(got[1].CPUPerCall())/float64(b))
		}
	}
	return c
}

// FailFast wraps op so that the first wrong answer (a *MismatchError) or
// unexpected error (a *CallError, or any other error that is not a call
// refused to shed load) ends the whole run: it cancels with the error as
// the cause, so that the caller finds it with RunError and every phase
// stops at once.
func FailFast(cancel context.CancelCauseFunc, op Op) Op {
	return func(ctx context.Context, worker int, seq uint64) error {
		err := op(ctx, worker, seq)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if _, shed := ShedOf(err); !shed {
			cancel(err)
		}
		return err
	}
}

// RunError returns the wrong answer or unexpected error that ended the run
// of ctx (see FailFast), or nil when none did.
func RunError(ctx context.Context) error {
	var mm *MismatchError
	var ce *CallError
	if err := context.Cause(ctx); errors.As(err, &mm) || errors.As(err, &ce) {
		return err
	}
	return nil
}

// RetryJitter returns d plus up to a fifth more, as the Go client
// (package client) waits after a RetryInfo, so that callers shed together
// do not come back together.
func RetryJitter(d time.Duration) time.Duration {
	return d + rand.N(d/5+1)
}

// ShedOf reports whether err is a call refused to shed load
// (RESOURCE_EXHAUSTED) and the RetryInfo delay it suggests (50ms when it
// suggests none).
func ShedOf(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if err == nil || !ok || st.Code() != codes.ResourceExhausted {
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 50 * time.Millisecond, true
}

// histogramJSON is the wire form of a Histogram: its non-empty buckets.
type histogramJSON struct {
	Buckets map[int]uint64 `json:"buckets"`
	N       uint64         `json:"n"`
	Sum     int64          `json:"sum_ns"`
	Max     int64          `json:"max_ns"`
}

// MarshalJSON encodes h so that another process can merge it (probe
// callers report theirs so).
func (h *Histogram) MarshalJSON() ([]byte, error) {
	j := histogramJSON{Buckets: map[int]uint64{}, N: h.n, Sum: h.sum, Max: h.max}
	for i, c := range h.counts {
		if c > 0 {
			j.Buckets[i] = c
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON encoded.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histogramJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*h = Histogram{n: j.N, sum: j.Sum, max: j.Max}
	for i, c := range j.Buckets {
		if i < 0 || i >= histBuckets {
			return fmt.Errorf("histogram bucket %d out of range", i)
		}
		h.counts[i] = c
	}
	return nil
}
