package server

import (
	"container/heap"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// gateSim is a closed loop of callers on connections in front of one CPU
// that serves the decisions the admission gate lets in, in their order of
// arrival, in service each. A refusal costs the CPU refuse (added to the
// next decision it serves); a refused caller comes back after the jittered
// RetryInfo delay it was told, a served one at once.
type gateSim struct {
	service, refuse time.Duration
	conns           []int // callers on each connection
	// costs, when set, is each connection's service time instead.
	costs     []time.Duration
	run, warm time.Duration
}

// gateSimResult is what a gateSim measured after its warm-up, per
// connection.
type gateSimResult struct {
	served, refused []int
	waits           [][]time.Duration
	// worst is the largest p99 wait of the served decisions over the
	// windows of 100ms after the warm-up.
	worst time.Duration
}

type simCall struct {
	at     time.Duration
	caller int
}

type simCalls []simCall

func (a simCalls) Len() int           { return len(a) }
func (a simCalls) Less(i, j int) bool { return a[i].at < a[j].at }
func (a simCalls) Swap(i, j int)      { a[i], a[j] = a[j], a[i] }
func (a *simCalls) Push(x any)        { *a = append(*a, x.(simCall)) }
func (a *simCalls) Pop() any {
	old := *a
	x := old[len(old)-1]
	*a = old[:len(old)-1]
	return x
}

func (s gateSim) play(g *admissionGate) gateSimResult {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var connOf []int
	for c, n := range s.conns {
		for range n {
			connOf = append(connOf, c)
		}
	}
	name := func(c int) string { return fmt.Sprintf("10.0.0.%d:4000", c+1) }
	res := gateSimResult{served: make([]int, len(s.conns)), refused: make([]int, len(s.conns)), waits: make([][]time.Duration, len(s.conns))}
	ready := &simCalls{}
	for i := range connOf {
		heap.Push(ready, simCall{time.Duration(i) * time.Microsecond, i})
	}
	type job struct {
		at     time.Duration
		t      gateTicket
		caller int
		cost   time.Duration
	}
	var queue []job
	var now, end, extra time.Duration
	var cur *job
	var window []time.Duration
	windowAt := s.warm
	start := func() {
		if cur != nil || len(queue) == 0 {
			return
		}
		j := queue[0]
		queue = queue[1:]
		cur = &j
		g.observe(j.t, t0.Add(now))
		if now >= s.warm {
			wait := now - j.at
			c := connOf[j.caller]
			res.waits[c] = append(res.waits[c], wait)
			res.served[c]++
			window = append(window, wait)
		}
		cur.cost = s.service
		if s.costs != nil {
			cur.cost = s.costs[connOf[j.caller]]
		}
		end = now + cur.cost + extra
		extra = 0
	}
	for now < s.run {
		if now >= windowAt+100*time.Millisecond {
			if len(window) > 0 {
				slices.Sort(window)
				res.worst = max(res.worst, window[len(window)*99/100])
			}
			window, windowAt = window[:0], now
		}
		if cur != nil && (ready.Len() == 0 || end <= (*ready)[0].at) {
			now = end
			g.leave(cur.t, cur.cost)
			heap.Push(ready, simCall{now, cur.caller})
			cur = nil
			start()
			continue
		}
		c := heap.Pop(ready).(simCall)
		now = max(now, c.at)
		tk, retry, ok := g.arrive(t0.Add(now), name(connOf[c.caller]), false)
		if !ok {
			if now >= s.warm {
				res.refused[connOf[c.caller]]++
			}
			extra += s.refuse
			heap.Push(ready, simCall{now + jitter(retry), c.caller})
			continue
		}
		queue = append(queue, job{at: now, t: tk, caller: c.caller})
		start()
	}
	return res
}

func p99(waits []time.Duration) time.Duration {
	if len(waits) == 0 {
		return 0
	}
	w := slices.Clone(waits)
	slices.Sort(w)
	return w[len(w)*99/100]
}

// TestAdmissionGate_ClosedLoop: callers in a closed loop on four
// connections in front of one CPU that serves a decision in 20µs (refusing
// one costs 2µs): 20 and 200 callers (waits up to 4ms, under the 5ms
// target) are never refused; with 2 000 callers (40ms of queue without a
// limit) the gate refuses on arrival and keeps the served decisions' wait
// near the target in every 100ms window, also when the callers it refused
// come back from their RetryInfo delay; and most of the CPU still serves
// decisions.
func TestAdmissionGate_ClosedLoop(t *testing.T) {
	t.Parallel()
	const target = 5 * time.Millisecond
	for _, callers := range []int{20, 200, 2000} {
		g := newAdmissionGate(target, 100*time.Millisecond, nil)
		sim := gateSim{service: 20 * time.Microsecond, refuse: 2 * time.Microsecond, run: 4 * time.Second, warm: time.Second,
			conns: []int{callers / 4, callers / 4, callers / 4, callers / 4}}
		res := sim.play(g)
		var served, refused int
		var waits []time.Duration
		for c := range sim.conns {
			served += res.served[c]
			refused += res.refused[c]
			waits = append(waits, res.waits[c]...)
		}
		throughput := float64(served) / (sim.run - sim.warm).Seconds()
		t.Logf("%d callers: %d served (%.0f/s), %d refused, p99 wait %v, worst 100ms window p99 %v, limit %.0f",
			callers, served, throughput, refused, p99(waits), res.worst, g.currentLimit())
		switch {
		case callers <= 200 && refused > 0:
			t.Errorf("%d callers: %d refused, want none", callers, refused)
		case callers == 2000 && refused == 0:
			t.Errorf("2000 callers: none refused")
		case p99(waits) > 2*target || res.worst > 3*target:
			t.Errorf("%d callers: p99 wait %v, worst window's p99 %v; want <= %v and %v", callers, p99(waits), res.worst, 2*target, 3*target)
		case throughput < 0.8/sim.service.Seconds():
			t.Errorf("%d callers: %.0f decisions/s served, want at least 80%% of the CPU's %.0f", callers, throughput, 1/sim.service.Seconds())
		}
	}
}

// TestAdmissionGate_FairToTheFew: next to a crowd of 2 000 callers on four
// connections, a client with one call at a time on a connection of its own
// is never refused while the crowd is, and its wait stays near the target.
func TestAdmissionGate_FairToTheFew(t *testing.T) {
	t.Parallel()
	const target = 5 * time.Millisecond
	g := newAdmissionGate(target, 100*time.Millisecond, nil)
	sim := gateSim{service: 20 * time.Microsecond, refuse: 2 * time.Microsecond, run: 3 * time.Second, warm: 500 * time.Millisecond,
		conns: []int{500, 500, 500, 500, 1}}
	res := sim.play(g)
	few := len(sim.conns) - 1
	t.Logf("crowd: %v served, %v refused; few: %d served, %d refused, p99 wait %v", res.served[:few], res.refused[:few],
		res.served[few], res.refused[few], p99(res.waits[few]))
	if res.refused[few] != 0 {
		t.Errorf("the connection with one caller had %d decisions refused", res.refused[few])
	}
	for c := range few {
		if res.refused[c] == 0 {
			t.Errorf("crowd connection %d: nothing refused", c)
		}
	}
	if w := p99(res.waits[few]); w > 2*target {
		t.Errorf("the few callers' p99 wait %v, want <= %v", w, 2*target)
	}
}

// TestAdmissionGate_Limit drives the gate call by call: long waits cut the
// limit once per round trip (decisions that arrived before a cut do not
// cut it again) to the estimate of the work the CPU serves within the
// target; past the limit arrivals are refused at once with a RetryInfo
// delay that grows while many are refused; short waits with the limit in
// use let it grow again, one decision each.
func TestAdmissionGate_Limit(t *testing.T) {
	t.Parallel()
	const target = 5 * time.Millisecond
	g := newAdmissionGate(target, 100*time.Millisecond, nil)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// 400 decisions arrive at once; none is refused.
	var held []gateTicket
	for i := range 400 {
		tk, _, ok := g.arrive(now, "c1", false)
		if !ok || tk.ahead != float64(i)*gateCostDefault {
			t.Fatalf("arrival %d: ok %t ahead %v", i, ok, tk.ahead)
		}
		held = append(held, tk)
	}
	// The one that arrived with 199 ahead of it waited 20ms: 200 in
	// flight give 20ms, so 50 give the 5ms target; a cut takes at most
	// seven eighths of the limit.
	for _, want := range []float64{maxGateLimit / 8, maxGateLimit / 64, 50} {
		tk := held[199]
		g.observe(tk, tk.at.Add(20*time.Millisecond))
		if l := g.currentLimit(); math.Abs(l-want) > 0.01 {
			t.Fatalf("limit after a 20ms wait with 199 ahead: %v, want %v", l, want)
		}
		// The next ones arrived after that cut.
		for i := range held {
			held[i].at = held[i].at.Add(30 * time.Millisecond)
		}
	}
	now = held[0].at
	// One that arrived before the cut waited as long: no further cut.
	old := held[10]
	old.at = now.Add(-time.Second)
	g.observe(old, now)
	if l := g.currentLimit(); math.Abs(l-50) > 0.01 {
		t.Fatalf("a decision that arrived before the cut cut again: limit %v", l)
	}
	// 400 in flight, limit 50: the next arrival is refused.
	if _, retry, ok := g.arrive(now, "c1", false); ok || retry < overloadRetryDelay {
		t.Fatalf("past the limit: ok %t retry %v", ok, retry)
	}
	for _, tk := range held {
		g.leave(tk, 0)
	}
	// Not below minGateLimit decisions.
	tk, _, _ := g.arrive(now, "c1", false)
	g.observe(tk, now.Add(time.Second))
	g.leave(tk, 0)
	if l := g.currentLimit(); math.Abs(l-minGateLimit) > 0.01 {
		t.Fatalf("a one-decision queue of 1s: limit %v, want %d", l, minGateLimit)
	}
	// Short waits with the limit half used grow it one by one.
	later := now.Add(2 * time.Second)
	busy := gateTicket{at: later, ahead: 7 * gateCostDefault, work: gateCostDefault}
	for range 5 {
		g.observe(busy, later.Add(time.Millisecond))
	}
	if l := g.currentLimit(); math.Abs(l-minGateLimit-5) > 0.01 {
		t.Errorf("five short waits: limit %v, want %d", l, minGateLimit+5)
	}
	// Short waits with the limit mostly unused do not.
	lone := gateTicket{at: later, work: gateCostDefault}
	for range 5 {
		g.observe(lone, later.Add(time.Millisecond))
	}
	if l := g.currentLimit(); math.Abs(l-minGateLimit-5) > 0.01 {
		t.Errorf("short waits of lone decisions moved the limit to %v", l)
	}
	// The RetryInfo delay doubles while more are refused than half of
	// those admitted, and is back to its floor once nothing is.
	at := later.Add(time.Second)
	var retry time.Duration
	for i := range 4 {
		var in []gateTicket
		for range 200 {
			if tk, r, ok := g.arrive(at, "c1", false); !ok {
				retry = r
			} else {
				in = append(in, tk)
			}
		}
		if i == 3 {
			// Another connection's delay is its own.
			if _, r, ok := g.arrive(at, "c2", true); ok {
				t.Errorf("c2 let in past the limit")
			} else if r != overloadRetryDelay {
				t.Errorf("c2, refused for the first time, is told %v", r)
			}
		}
		for _, tk := range in {
			g.leave(tk, 0)
		}
		at = at.Add(101 * time.Millisecond)
	}
	if retry <= overloadRetryDelay {
		t.Errorf("after intervals refusing most arrivals the RetryInfo delay is %v", retry)
	}
	at = at.Add(time.Second)
	tk, _, ok := g.arrive(at, "c1", false)
	if !ok {
		t.Fatal("a lone arrival after an idle second was refused")
	}
	g.leave(tk, 0)
	if r := g.conns["c1"].retry; r != overloadRetryDelay {
		t.Errorf("after an idle second the RetryInfo delay is %v", r)
	}
}

// TestAdmissionGate_FairByCost: a connection carrying ten callers of cheap
// decisions (20µs) next to one carrying eight callers of costly ones (1ms;
// 8ms of work, a queue past the 5ms target) is never refused while the
// costly one is: fairness weighs the work in flight, not the number of
// calls.
func TestAdmissionGate_FairByCost(t *testing.T) {
	t.Parallel()
	g := newAdmissionGate(5*time.Millisecond, 100*time.Millisecond, nil)
	g.minInflight = 0 // the tiers, as they act past DefaultGateMinInflight decisions in flight
	sim := gateSim{refuse: 2 * time.Microsecond, run: 3 * time.Second, warm: 500 * time.Millisecond,
		conns: []int{10, 8}, costs: []time.Duration{20 * time.Microsecond, time.Millisecond}}
	res := sim.play(g)
	t.Logf("cheap: %d served, %d refused, p99 wait %v; costly: %d served, %d refused, p99 wait %v; limit %.0f", res.served[0], res.refused[0],
		p99(res.waits[0]), res.served[1], res.refused[1], p99(res.waits[1]), g.currentLimit())
	if res.refused[0] != 0 {
		t.Errorf("the cheap connection had %d decisions refused", res.refused[0])
	}
	if res.refused[1] == 0 {
		t.Errorf("the costly connection had none refused")
	}
}

// TestAdmissionGate_FewNeverRefusedOverGRPC serves a real server with a
// 1ms queue target: a crowd of 200 callers on one connection is refused
// on arrival (RESOURCE_EXHAUSTED, ErrorInfo shed=queue_delay, early=true,
// RetryInfo), while a caller with one call at a time on a connection of
// its own is never refused, neither by the gate nor by the queue shedder
// behind it.
func TestAdmissionGate_FewNeverRefusedOverGRPC(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "", withLimits(Limits{QueueTarget: time.Millisecond, QueueInterval: 10 * time.Millisecond, CallerCPUShare: -1}))
	ctx := ctxT(t)
	req := &gatehousev1.CheckFeatureRequest{SessionId: "s-none", Actor: agent("a"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://example.com/"}
	var crowdOK, crowdRefused, fewOK, fewRefused atomic.Int64
	var early atomic.Pointer[status.Status]
	stop := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				_, err := e.decide.CheckFeature(ctx, req)
				switch st, _ := status.FromError(err); st.Code() {
				case codes.NotFound:
					crowdOK.Add(1)
				case codes.ResourceExhausted:
					crowdRefused.Add(1)
					if errorMeta(st)["early"] == "true" {
						early.Store(st)
					}
					time.Sleep(time.Millisecond) // ignores RetryInfo
				default:
					t.Errorf("crowd: %v", err)
					return
				}
			}
		}()
	}
	few, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer few.Close()
	fewClient := gatehousev1.NewDecisionServiceClient(few)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Now().Before(stop) {
			_, err := fewClient.CheckFeature(ctx, req)
			switch status.Code(err) {
			case codes.NotFound:
				fewOK.Add(1)
			case codes.ResourceExhausted:
				fewRefused.Add(1)
				t.Errorf("the few: refused: %v", err)
			default:
				t.Errorf("the few: %v", err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	t.Logf("crowd: %d answered, %d refused; few: %d answered, %d refused", crowdOK.Load(), crowdRefused.Load(), fewOK.Load(), fewRefused.Load())
	if fewOK.Load() == 0 {
		t.Error("the few: nothing answered")
	}
	st := early.Load()
	if st == nil {
		t.Fatalf("crowd: no refusal on arrival among %d refusals", crowdRefused.Load())
	}
	var retry time.Duration
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r.GetRetryDelay().AsDuration()
		}
	}
	if errorReason(st) != reasonOverloaded || errorMeta(st)["shed"] != shedQueueDelay || retry <= 0 {
		t.Errorf("refusal on arrival %q: reason %q, meta %v, retry %v", st.Message(), errorReason(st), errorMeta(st), retry)
	}
}

// TestAdmissionGate_FewCallersNeverRefused: fewer callers than
// DefaultGateMinInflight, all within their share, are never refused
// however long their decisions queue: 16 callers of costly decisions (a
// closed loop of CheckFeatures batches) keep one core busy with waits far
// past the target, which is the closed loop's own queue, not overload.
// With the floor off (minInflight 0) the same load is refused.
func TestAdmissionGate_FewCallersNeverRefused(t *testing.T) {
	t.Parallel()
	for _, floor := range []int{DefaultGateMinInflight, 0} {
		g := newAdmissionGate(5*time.Millisecond, 100*time.Millisecond, nil)
		g.minInflight = floor
		sim := gateSim{refuse: 2 * time.Microsecond, run: 2 * time.Second, warm: 300 * time.Millisecond,
			conns: []int{8, 8}, costs: []time.Duration{20 * time.Microsecond, 2 * time.Millisecond}}
		res := sim.play(g)
		refused := res.refused[0] + res.refused[1]
		t.Logf("floor %d: served %d+%d, refused %d+%d", floor, res.served[0], res.served[1], res.refused[0], res.refused[1])
		if floor > 0 && refused != 0 {
			t.Errorf("floor %d: %d decisions of 16 callers refused", floor, refused)
		}
		if floor == 0 && refused == 0 {
			t.Errorf("floor off: none of the 16 callers' decisions refused; the test no longer exercises the floor")
		}
	}
}
