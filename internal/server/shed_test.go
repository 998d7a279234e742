package server

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestQueueShedder_CoDel drives the shedder with a controlled clock: a
// burst is absorbed (only waits over an interval are shed) until the
// shortest wait of a whole interval exceeds the target; from then on any
// wait over the target is shed, until an interval with a short wait, or an
// idle one, ends the standing queue.
func TestQueueShedder_CoDel(t *testing.T) {
	t.Parallel()
	const target, interval = 5 * time.Millisecond, 100 * time.Millisecond
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	q := newQueueShedder(target, interval)
	type call struct {
		ms   int           // clock
		wait time.Duration // the call's queueing delay
		ok   bool
		why  string
	}
	for i, c := range []call{
		{0, time.Millisecond, true, "first call opens a window"},
		{10, 50 * time.Millisecond, true, "a burst: longer than target, shorter than interval"},
		{20, 150 * time.Millisecond, false, "longer than an interval is always shed"},
		{90, 60 * time.Millisecond, true, "window min is 1ms: no standing queue"},
		{110, 20 * time.Millisecond, true, "new window; the last one's min (1ms) was under target"},
		{150, 30 * time.Millisecond, true, "still absorbing"},
		{215, 40 * time.Millisecond, false, "window [110,215) min 20ms > target: standing queue, 40ms > 5ms shed"},
		{220, 4 * time.Millisecond, true, "under target is served while standing"},
		{250, 6 * time.Millisecond, false, "over target is shed while standing"},
		{320, 3 * time.Millisecond, true, "window [215,320) had waits over target: still standing"},
		{330, 7 * time.Millisecond, false, "still standing: 7ms shed"},
		{420, 2 * time.Millisecond, true, "window [320,420) had a wait over target: still standing"},
		{450, 4 * time.Millisecond, true, "served"},
		{525, 30 * time.Millisecond, true, "window [420,525): no wait over target, min 2ms: the queue drained, absorbing again"},
		{630, 30 * time.Millisecond, false, "window [525,630) min 30ms > target: standing again"},
		{900, 30 * time.Millisecond, true, "no call for over two intervals: the queue is empty"},
	} {
		ok, limit, _ := q.admit(at(c.ms), c.wait)
		if ok != c.ok {
			t.Fatalf("call %d at %dms waiting %v: admitted %t (limit %v), want %t: %s", i, c.ms, c.wait, ok, limit, c.ok, c.why)
		}
	}
}

// TestQueueShedder_ClosedLoop simulates callers in a closed loop in front
// of one CPU that serves a call in 20µs (refusing one takes 2µs; a
// refused caller waits the RetryInfo delay it is told): 20 and 200 callers
// (waits up to 4ms) are never shed; 2 000 callers (40ms of queue) are, so
// that the calls served keep a wait near the target instead of 40ms.
func TestQueueShedder_ClosedLoop(t *testing.T) {
	t.Parallel()
	const service, refuse = 20 * time.Microsecond, 2 * time.Microsecond
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, callers := range []int{20, 200, 2000} {
		q := newQueueShedder(5*time.Millisecond, 100*time.Millisecond)
		ready := &arrivals{}
		for i := range callers {
			heap.Push(ready, time.Duration(i)*time.Microsecond)
		}
		var now time.Duration
		var shed int
		var waits []time.Duration
		for now < 3*time.Second {
			at := heap.Pop(ready).(time.Duration)
			now = max(now, at)
			wait := now - at
			if ok, _, retry := q.admit(t0.Add(now), wait); ok {
				now += service
				if now > time.Second {
					waits = append(waits, wait)
				}
				heap.Push(ready, now)
			} else {
				shed++
				now += refuse
				heap.Push(ready, now+jitter(retry))
			}
		}
		slices.Sort(waits)
		p99 := waits[len(waits)*99/100]
		switch {
		case callers <= 200 && shed > 0:
			t.Errorf("%d callers: %d calls shed, want none", callers, shed)
		case callers == 2000 && (shed == 0 || p99 > 10*time.Millisecond):
			t.Errorf("2000 callers: %d shed, p99 wait of served calls %v; want shedding and <= 10ms", shed, p99)
		}
		t.Logf("%d callers: %d served after 1s, %d shed, p99 wait %v", callers, len(waits), shed, p99)
	}
}

// arrivals is a min-heap of the times callers are ready to call.
type arrivals []time.Duration

func (a arrivals) Len() int           { return len(a) }
func (a arrivals) Less(i, j int) bool { return a[i] < a[j] }
func (a arrivals) Swap(i, j int)      { a[i], a[j] = a[j], a[i] }
func (a *arrivals) Push(x any)        { *a = append(*a, x.(time.Duration)) }
func (a *arrivals) Pop() any {
	old := *a
	x := old[len(old)-1]
	*a = old[:len(old)-1]
	return x
}

// TestShedding_HealthNeverShed serves a real server whose queue limits
// shed every decision (any wait is too long) and checks that decisions
// get RESOURCE_EXHAUSTED with RetryInfo and ErrorInfo shed=queue_delay,
// counted in gatehouse_shed_total, while health checks from many callers
// at once are all answered SERVING.
func TestShedding_HealthNeverShed(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	e := MustStart(t, "", withLimits(Limits{QueueTarget: time.Nanosecond, QueueInterval: 2 * time.Nanosecond}), func(o *Options) { o.Metrics = m })
	ctx := ctxT(t)
	health := healthpb.NewHealthClient(e.conn)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for w := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if w%2 == 0 {
					resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
					if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
						errs <- fmt.Errorf("health call %d: %v %v", i, resp.GetStatus(), err)
					}
					continue
				}
				_, err := e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: "s-none", Actor: agent("a"),
					Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://example.com/"})
				if statusCode(err) != codes.ResourceExhausted {
					errs <- fmt.Errorf("decision %d: %v, want RESOURCE_EXHAUSTED", i, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, err := e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: "s-none", Actor: agent("a"),
		Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://example.com/"})
	st := wantCode(t, err, codes.ResourceExhausted)
	if errorReason(st) != reasonOverloaded || errorMeta(st)["shed"] != shedQueueDelay || !strings.Contains(st.Message(), "waited") {
		t.Errorf("shed status %v: reason %q meta %v", st.Message(), errorReason(st), errorMeta(st))
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("shed status without RetryInfo: %v", st.Details())
	}
	if n := testutil.ToFloat64(newShedMetrics(m).shed[shedQueueDelay]); n < 201 {
		t.Errorf("gatehouse_shed_total{reason=queue_delay} = %v, want >= 201", n)
	}
	if n := testutil.CollectAndCount(m.Registry, "gatehouse_queue_delay_seconds"); n != 1 {
		t.Errorf("queue delay histogram: %d series", n)
	}
	// Admin calls are not shed by queue delay: their requests may be large.
	if _, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}); err != nil {
		t.Errorf("admin call under decision shedding: %v", err)
	}
}

// TestShedding_NotUnderLightLoad: with the default limits, calls from a
// few callers are never shed.
func TestShedding_NotUnderLightLoad(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	for i := range 50 {
		_, err := e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: "s-none", Actor: agent("a"),
			Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://example.com/"})
		if statusCode(err) == codes.ResourceExhausted {
			t.Fatalf("call %d shed under light load: %v", i, err)
		}
	}
}

// TestQueueShedder_RetryDelayAdapts: the RetryInfo delay doubles after
// each interval that ends with a standing queue, up to maxRetryDelay, and
// halves after each that ends without, down to overloadRetryDelay; an
// idle interval resets it. Jitter stays within half and one and a half
// times the delay.
func TestQueueShedder_RetryDelayAdapts(t *testing.T) {
	t.Parallel()
	q := newQueueShedder(5*time.Millisecond, 100*time.Millisecond)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	step := func(wait time.Duration) time.Duration {
		now = now.Add(101 * time.Millisecond)
		_, _, retry := q.admit(now, wait)
		return retry
	}
	if r := step(time.Millisecond); r != overloadRetryDelay {
		t.Fatalf("first retry delay %v", r)
	}
	want := overloadRetryDelay
	for range 10 {
		r := step(20 * time.Millisecond) // every interval ends standing
		if q.standing {
			want = min(2*want, maxRetryDelay)
		}
		if r != want {
			t.Fatalf("standing: retry %v, want %v", r, want)
		}
	}
	if want != maxRetryDelay {
		t.Fatalf("retry delay stopped at %v", want)
	}
	step(time.Millisecond) // the last window still had a long wait
	for range 12 {
		step(time.Millisecond)
	}
	if _, _, r := q.admit(now, time.Millisecond); r != overloadRetryDelay {
		t.Errorf("after the queue drained: retry %v, want %v", r, overloadRetryDelay)
	}
	step(20 * time.Millisecond)
	step(20 * time.Millisecond)
	now = now.Add(time.Second)
	if _, _, r := q.admit(now, time.Millisecond); r != overloadRetryDelay {
		t.Errorf("after an idle second: retry %v, want %v", r, overloadRetryDelay)
	}
	for range 1000 {
		if j := jitter(time.Second); j < 500*time.Millisecond || j > 1500*time.Millisecond {
			t.Fatalf("jitter(1s) = %v", j)
		}
	}
}
