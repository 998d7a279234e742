package server

import (
	"container/heap"
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
	"google.golang.org/grpc/status"
)

// TestQueueShedder_CoDel drives the shedder with a controlled clock: long
// waits (a burst, a stall of the process) are absorbed until most waits of
// three whole intervals in a row exceed the target, even when a few calls
// of each found the CPU free; from then on
// any wait over the target is shed, until an interval without one, or an
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
		{5, time.Millisecond, true, "short"},
		{10, 50 * time.Millisecond, true, "a burst is absorbed"},
		{20, 250 * time.Millisecond, true, "a stall of the process is absorbed"},
		{30, 2 * time.Millisecond, true, "short"},
		{110, 20 * time.Millisecond, true, "window [0,110): most waits short: no standing queue"},
		{120, time.Millisecond, true, "a call of a burst that found the CPU free"},
		{150, 30 * time.Millisecond, true, "absorbing"},
		{215, 40 * time.Millisecond, true, "one window [110,215) with most waits long: not yet standing"},
		{320, 40 * time.Millisecond, true, "two windows: not yet standing"},
		{330, 2 * time.Millisecond, true, "a short wait does not end a standing queue"},
		{340, 40 * time.Millisecond, true, "not yet standing"},
		{425, 40 * time.Millisecond, false, "three windows in a row with most waits > target: standing, 40ms shed"},
		{430, 4 * time.Millisecond, true, "under target is served while standing"},
		{450, 6 * time.Millisecond, false, "over target is shed while standing"},
		{530, 3 * time.Millisecond, true, "window [425,530) had waits over target: still standing"},
		{540, 7 * time.Millisecond, false, "still standing: 7ms shed"},
		{635, 2 * time.Millisecond, true, "window [530,635) had a wait over target: still standing"},
		{650, 4 * time.Millisecond, true, "served"},
		{740, 30 * time.Millisecond, true, "window [635,740): no wait over target: the queue drained"},
		{845, 30 * time.Millisecond, true, "one window with min 30ms: not standing yet"},
		{950, 30 * time.Millisecond, true, "two windows"},
		{1055, 30 * time.Millisecond, false, "three windows: standing again"},
		{1400, 30 * time.Millisecond, true, "no call for over two intervals: the queue is empty"},
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

// TestShedding_HealthNeverShed serves a real server whose queue limits no
// call can meet (a 1ns target) and checks, with decisions and health
// checks from many callers at once, that decisions end up refused with
// RESOURCE_EXHAUSTED with RetryInfo and ErrorInfo shed=queue_delay,
// counted in gatehouse_shed_total, while every health check is answered
// SERVING; admin calls are not shed by queue delay.
func TestShedding_HealthNeverShed(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	e := MustStart(t, "", withLimits(Limits{QueueTarget: time.Nanosecond, QueueInterval: 10 * time.Millisecond, GateMinInflight: -1}), func(o *Options) { o.Metrics = m })
	ctx := ctxT(t)
	health := healthpb.NewHealthClient(e.conn)
	req := &gatehousev1.CheckFeatureRequest{SessionId: "s-none", Actor: agent("a"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://example.com/"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var shedSt *status.Status
	var healthCalls int
	stop := time.Now().Add(5 * time.Second)
	done := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return (shedSt != nil && healthCalls >= 200) || time.Now().After(stop)
	}
	for w := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done() {
				if w%2 == 0 {
					resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
					if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
						t.Errorf("health: %v %v", resp.GetStatus(), err)
						return
					}
					mu.Lock()
					healthCalls++
					mu.Unlock()
					continue
				}
				_, err := e.decide.CheckFeature(ctx, req)
				if st, _ := status.FromError(err); st.Code() == codes.ResourceExhausted {
					mu.Lock()
					shedSt = st
					mu.Unlock()
				} else if st.Code() != codes.NotFound {
					t.Errorf("decision: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if shedSt == nil {
		t.Fatal("no decision was shed with a 1ns queue target")
	}
	if errorReason(shedSt) != reasonOverloaded || errorMeta(shedSt)["shed"] != shedQueueDelay || !strings.Contains(shedSt.Message(), "waited") {
		t.Errorf("shed status %v: reason %q meta %v", shedSt.Message(), errorReason(shedSt), errorMeta(shedSt))
	}
	var retry *errdetails.RetryInfo
	for _, d := range shedSt.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("shed status without RetryInfo: %v", shedSt.Details())
	}
	if n := testutil.ToFloat64(newShedMetrics(m).shed[shedQueueDelay]); n < 1 {
		t.Errorf("gatehouse_shed_total{reason=queue_delay} = %v", n)
	}
	if n := testutil.CollectAndCount(m.Registry, "gatehouse_queue_delay_seconds"); n != 1 {
		t.Errorf("queue delay histogram: %d series", n)
	}
	// Admin calls are not shed by queue delay.
	if _, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}); err != nil {
		t.Errorf("admin call under decision shedding: %v", err)
	}
}

// TestShedding_NotUnderLightLoad: with the default limits, calls from a
// few callers are never shed.
func TestShedding_NotUnderLightLoad(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "", withLimits(Limits{})) // the defaults, shedding on
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
