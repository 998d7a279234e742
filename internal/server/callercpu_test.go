package server

import (
	"fmt"
	"runtime"
	"strings"
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

// TestCallerCPU_Share drives callerCPU with a clock of its own for a
// second: a heavy caller with one closed-loop client per core that wants
// the whole CPU, next to light callers that each decide at a steady pace.
// The process uses what the calls use. While the CPU is contended the
// heavy caller is held (not refused) once its bucket is empty, each hold
// within callerCPUMaxHold, and gets about its share: the configured one
// among many callers, an equal one among few; the light callers are never
// held. Without a queue it may use what the light callers leave. Alone, or on a CPU the calls keep less than three quarters busy, nobody
// is held; when decisions wait longer than the queue target, the CPU is
// contended however little of it the calls use.
func TestCallerCPU_Share(t *testing.T) {
	t.Parallel()
	cores := runtime.GOMAXPROCS(0)
	type outcome struct {
		heavyCPU             time.Duration // what the heavy caller's calls that ran cost
		heavyHeld, lightHeld int
		refused              int
		maxHold              time.Duration
	}
	// run plays a second of calls in steps of 50µs: share is the
	// configured share, heavyCost what one of the heavy caller's calls
	// costs and heavyGap how long each of its clients waits between
	// calls, lights how many light callers there are, each making a call
	// of lightCost every millisecond on every core.
	run := func(share float64, heavyCost, heavyGap time.Duration, lights int, lightCost time.Duration, queued bool) (o outcome) {
		c := newCallerCPU(share)
		c.queued = func(time.Time) bool { return queued }
		start := time.Unix(1000, 0)
		now := start
		// The process's CPU: what the calls used, plus 2µs each outside
		// the handlers; while decisions queue, all its cores (work no
		// call is charged with fills what the calls leave).
		var used time.Duration
		c.procCPU = func() time.Duration {
			if queued {
				return now.Sub(start) * time.Duration(cores)
			}
			return used
		}
		heavy := inflightKey{keyAccount, "heavy"}
		type slot struct {
			free    time.Time     // when its client sends its next call
			due     time.Time     // a held call's end of hold
			prepaid time.Duration // and its reservation
		}
		slots := make([]slot, cores)
		for i := range slots {
			slots[i].free = start
		}
		const step = 50 * time.Microsecond
		for end := start.Add(time.Second); now.Before(end); now = now.Add(step) {
			for i := range slots {
				s := &slots[i]
				if !s.due.IsZero() && !now.Before(s.due) {
					c.unhold(heavy, 0)
					c.charge(heavy, heavyCost, s.prepaid)
					used += heavyCost + 2*time.Microsecond
					o.heavyCPU += heavyCost
					s.due, s.free = time.Time{}, now.Add(heavyCost+heavyGap)
				}
				if !s.due.IsZero() || now.Before(s.free) {
					continue
				}
				switch v, wait, prepaid := c.admit(heavy, now, time.Time{}, true, queued, false); v {
				case cpuAdmit:
					c.charge(heavy, heavyCost, 0)
					used += heavyCost + 2*time.Microsecond
					o.heavyCPU += heavyCost
					s.free = now.Add(heavyCost + heavyGap)
				case cpuHold:
					o.heavyHeld++
					o.maxHold = max(o.maxHold, wait)
					s.due, s.prepaid = now.Add(wait), prepaid
				default:
					o.refused++
					s.free = now.Add(time.Millisecond)
				}
			}
			if now.Sub(start)%time.Millisecond != 0 {
				continue
			}
			for l := range lights {
				k := inflightKey{keyAccount, fmt.Sprintf("light-%d", l)}
				for range cores {
					if v, _, _ := c.admit(k, now, time.Time{}, true, queued, false); v != cpuAdmit {
						o.lightHeld++
						continue
					}
					c.charge(k, lightCost, 0)
					used += lightCost + 2*time.Microsecond
				}
			}
		}
		return o
	}
	second := time.Duration(cores) * time.Second
	check := func(name string, o outcome, wantShare float64) {
		t.Helper()
		got := float64(o.heavyCPU) / float64(second)
		t.Logf("%s: heavy caller used %.2f of the CPU (want about %.2f), held %d times (longest %v), refused %d; light callers held %d times",
			name, got, wantShare, o.heavyHeld, o.maxHold, o.refused, o.lightHeld)
		if got < wantShare*0.8 || got > wantShare*1.2+float64(callerCPUBurst)/float64(second) {
			t.Errorf("%s: heavy caller used %.2f of the CPU, want about %.2f", name, got, wantShare)
		}
		if o.heavyHeld == 0 || o.maxHold > callerCPUMaxHold || o.refused > 0 {
			t.Errorf("%s: heavy caller held %d times (longest %v), refused %d; want held, within %v, never refused", name, o.heavyHeld, o.maxHold, o.refused, callerCPUMaxHold)
		}
		if o.lightHeld > 0 {
			t.Errorf("%s: light callers held or refused %d times", name, o.lightHeld)
		}
	}
	// Ten light callers of 30µs a millisecond (30 % of the CPU) and a
	// heavy one of 1ms calls, while decisions wait longer than the queue
	// target: among eleven callers the heavy one gets the configured
	// share, a quarter.
	check("share among many", run(0.25, time.Millisecond, 0, 10, 30*time.Microsecond, true), 0.25)
	// One light caller: an equal share among two, half, is larger than
	// the configured tenth.
	check("equal share among few", run(0.1, time.Millisecond, 0, 1, 300*time.Microsecond, true), 0.5)
	// Without a queue the heavy caller is held only while the CPU is
	// three quarters busy: it gets more than its share, up to what the
	// light callers leave, and they are never held.
	if o := run(0.25, time.Millisecond, 0, 10, 30*time.Microsecond, false); o.lightHeld > 0 ||
		float64(o.heavyCPU) < 0.25*float64(second) || float64(o.heavyCPU) > 0.7*float64(second)+float64(callerCPUBurst) {
		t.Errorf("busy CPU without a queue: heavy caller used %v of %v, light callers held %d times; want between its share and what they leave, and none",
			o.heavyCPU, second, o.lightHeld)
	}
	if o := run(0.1, time.Millisecond, 0, 0, 0, true); o.heavyHeld+o.refused > 0 {
		t.Errorf("a caller alone was held %d times, refused %d", o.heavyHeld, o.refused)
	}
	// A call of 100µs and twenty of 2µs a millisecond: less than a fifth
	// of the CPU; not contended, whatever one caller's share of it.
	// Nor are calls that leave a third of it idle: the heavy caller of
	// 300µs with a 700µs gap and ten light callers of 20µs.
	if o := run(0.02, 300*time.Microsecond, 700*time.Microsecond, 10, 20*time.Microsecond, false); o.heavyHeld+o.refused+o.lightHeld > 0 {
		t.Errorf("a CPU two thirds busy: heavy caller held %d times, refused %d; light %d", o.heavyHeld, o.refused, o.lightHeld)
	}
	if o := run(0.02, 100*time.Microsecond, 900*time.Microsecond, 20, 2*time.Microsecond, false); o.heavyHeld+o.refused+o.lightHeld > 0 {
		t.Errorf("uncontended CPU: heavy caller held %d times, refused %d; light %d", o.heavyHeld, o.refused, o.lightHeld)
	}
	// The same while decisions wait longer than the queue target (the
	// transport, the garbage collector or writes hold the CPU): contended;
	// the heavy caller (10 %) is held to an equal share among 21 callers
	// (4.8 %, more than the configured 2 %), the light ones (0.2 % each)
	// never.
	o := run(0.02, 100*time.Microsecond, 900*time.Microsecond, 20, 2*time.Microsecond, true)
	if o.heavyHeld == 0 || o.lightHeld > 0 {
		t.Errorf("decisions queueing: heavy caller held %d times, light %d; want the heavy one only", o.heavyHeld, o.lightHeld)
	}
}

// TestCallerCPU_ExpensiveCallerHeldOverGRPC: on a real server, an account
// whose decisions are costly (the largest element against rules that read
// all of it), from more callers at once than callerCPUMaxHeld that ignore
// RetryInfo, next to a light account deciding every few milliseconds on a
// connection of its own, has its calls held for its share to refill
// (gatehouse_caller_cpu_hold_seconds) and, past what may be held, refused
// RESOURCE_EXHAUSTED with ErrorInfo shed=caller_cpu and a RetryInfo (by its
// bucket, or at the tap), counted in gatehouse_shed_total{reason="caller_cpu"};
// the light account is never held nor refused.
func TestCallerCPU_ExpensiveCallerHeldOverGRPC(t *testing.T) {
	t.Parallel()
	if raceEnabled {
		// The share judges CPU time: under the race detector gRPC's own
		// instrumented work outweighs the decisions, and the CPU never
		// counts as contended by them. TestCallerCPU_Share covers the
		// rule itself.
		t.Skip("CPU shares mean nothing under the race detector")
	}
	m := NewMetrics()
	e := MustStart(t, "", func(o *Options) { o.Metrics = m; o.Limits = Limits{QueueTarget: -1} })
	ctx := ctxT(t)
	sessions := map[string]string{}
	for _, acct := range []string{"heavy", "light"} {
		e.MustCreateAccount(acct)
		e.MustAllow(acct, "shop", "shop.example.com")
		sessions[acct] = e.MustStartSession(acct).GetId()
	}
	// Rules that read every ancestor's data-x attribute in full.
	for i := range 10 {
		e.MustPrivacyRule("heavy", &gatehousev1.PrivacyRule{Id: fmt.Sprintf("r%d", i), Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK,
			Selector: fmt.Sprintf(`[data-x*="%sb" i] *`, strings.Repeat("a", 50-i))})
	}
	heavyReq := hostileClick(t, sessions["heavy"])
	lightReq := &gatehousev1.CheckFeatureRequest{SessionId: sessions["light"], Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK,
		Url: "https://shop.example.com/", Element: &gatehousev1.Element{Tag: "a"}}
	var heavyShed, heavyOK, lightShed atomic.Int64
	var firstShed atomic.Pointer[status.Status]
	var wg sync.WaitGroup
	stop := time.Now().Add(1500 * time.Millisecond)
	for range callerCPUMaxHeld + 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				_, err := e.decide.CheckFeature(ctx, heavyReq)
				switch st, _ := status.FromError(err); st.Code() {
				case codes.OK:
					heavyOK.Add(1)
				case codes.ResourceExhausted:
					heavyShed.Add(1)
					firstShed.CompareAndSwap(nil, st)
				default:
					t.Errorf("heavy: %v", err)
					return
				}
			}
		}()
	}
	// The light account is another client: a connection of its own.
	lightConn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer lightConn.Close()
	lightClient := gatehousev1.NewDecisionServiceClient(lightConn)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Now().Before(stop) {
			if _, err := lightClient.CheckFeature(ctx, lightReq); status.Code(err) == codes.ResourceExhausted {
				lightShed.Add(1)
			} else if err != nil {
				t.Errorf("light: %v", err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Wait()
	t.Logf("heavy: %d answered, %d refused; light: %d refused", heavyOK.Load(), heavyShed.Load(), lightShed.Load())
	if heavyShed.Load() == 0 || heavyOK.Load() == 0 {
		t.Fatalf("heavy caller: %d answered, %d refused; want both", heavyOK.Load(), heavyShed.Load())
	}
	if lightShed.Load() > 0 {
		t.Errorf("light caller refused %d times", lightShed.Load())
	}
	st := firstShed.Load()
	var shed string
	var retry time.Duration
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			shed = d.GetMetadata()["shed"]
		case *errdetails.RetryInfo:
			retry = d.GetRetryDelay().AsDuration()
		}
	}
	if shed != shedCallerCPU || retry <= 0 {
		t.Errorf("refusal %q: shed=%q, retry %v; want shed=%s and a RetryInfo", st.Message(), shed, retry, shedCallerCPU)
	}
	if held := holdCount(t, m); held == 0 {
		t.Errorf("gatehouse_caller_cpu_hold_seconds counted no held call")
	}
	if got := shedCount(t, m, shedCallerCPU); got != float64(heavyShed.Load()) {
		t.Errorf("gatehouse_shed_total{reason=%q} = %v, want %d", shedCallerCPU, got, heavyShed.Load())
	}
}

// shedCount returns gatehouse_shed_total{reason=reason}.
func shedCount(t *testing.T, m *Metrics, reason string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_shed_total" {
			continue
		}
		for _, x := range mf.GetMetric() {
			for _, l := range x.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return x.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// holdCount returns the number of calls gatehouse_caller_cpu_hold_seconds
// observed.
func holdCount(t *testing.T, m *Metrics) uint64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "gatehouse_caller_cpu_hold_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// TestCallerCPU_ConnRefusals: the tap refuses a connection's decisions in
// the share its callers' buckets refused lately, at most nine in ten, and
// refuses nothing on a connection whose callers were not refused.
func TestCallerCPU_ConnRefusals(t *testing.T) {
	t.Parallel()
	c := newCallerCPU(0.25)
	for i := range 1000 {
		c.noteConn("hostile", cpuRefuse, 20*time.Millisecond)
		v := cpuAdmit
		if i%10 == 0 {
			v = cpuRefuse
		}
		c.noteConn("mixed", v, 20*time.Millisecond)
		c.noteConn("held", cpuHold, 20*time.Millisecond)
		c.noteConn("good", cpuAdmit, 0)
	}
	for _, tc := range []struct {
		conn      string
		min, max  int
		overShare bool
	}{{"hostile", 890, 900, true}, {"mixed", 95, 105, true}, {"held", 0, 0, true}, {"good", 0, 0, false}, {"unknown", 0, 0, false}} {
		refused := 0
		for range 1000 {
			if ok, retry := c.refuseConn(tc.conn); ok {
				refused++
				if retry != 20*time.Millisecond {
					t.Errorf("%s: retry %v, want the last one told", tc.conn, retry)
				}
			}
		}
		if refused < tc.min || refused > tc.max {
			t.Errorf("%s: tap refused %d of 1000, want %d–%d", tc.conn, refused, tc.min, tc.max)
		}
		if got := c.connOverShare(tc.conn); got != tc.overShare {
			t.Errorf("%s: over its share %t, want %t", tc.conn, got, tc.overShare)
		}
	}
}

// TestCallerCPU_HoldBounds: a caller past its share has its calls held
// while the hold is short, within the call's deadline and within
// callerCPUMaxHeld calls of its own and callerCPUMaxHeldTotal of all
// callers; each held call reserves its expected cost, so the next one
// waits longer; past any bound the call is refused, and a hold that ends
// without the call running gives its reservation back.
func TestCallerCPU_HoldBounds(t *testing.T) {
	t.Parallel()
	c := newCallerCPU(0.1)
	now := time.Unix(1000, 0)
	c.procCPU = func() time.Duration { return 0 }
	c.measure(now, 0)
	c.contended, c.active, c.rate = true, 100, 0.1
	// over makes k a caller past its share: its bucket a millisecond
	// short, its calls measured at 100µs.
	over := func(k inflightKey) {
		c.buckets[k] = &cpuBucket{tokens: -time.Millisecond, at: now, seen: now, cost: 100 * time.Microsecond}
	}
	a := inflightKey{keyAccount, "a"}
	over(a)
	var last time.Duration
	for i := range callerCPUMaxHeld {
		v, wait, prepaid := c.admit(a, now, time.Time{}, true, false, false)
		if v != cpuHold || wait <= last || prepaid != 100*time.Microsecond {
			t.Fatalf("call %d: verdict %d, wait %v (previous %v), prepaid %v; want held, longer than the one before, 100µs reserved", i, v, wait, last, prepaid)
		}
		last = wait
	}
	if v, _, _ := c.admit(a, now, time.Time{}, true, false, false); v != cpuRefuse {
		t.Errorf("call past %d held of one caller: verdict %d, want refused", callerCPUMaxHeld, v)
	}
	// A hold that ends without its call gives the reservation back.
	before := c.buckets[a].tokens
	c.unhold(a, 100*time.Microsecond)
	if got := c.buckets[a].tokens - before; got != 100*time.Microsecond {
		t.Errorf("unhold with a refund gave back %v, want 100µs", got)
	}
	// A deadline sooner than the hold: refused.
	b := inflightKey{keyAccount, "b"}
	over(b)
	if v, wait, _ := c.admit(b, now, now.Add(time.Millisecond), true, false, false); v != cpuRefuse || wait <= time.Millisecond {
		t.Errorf("call whose deadline ends before its hold: verdict %d, wait %v; want refused", v, wait)
	}
	// A hold longer than callerCPUMaxHold: refused.
	c.buckets[b].tokens = -time.Duration(float64(callerCPUMaxHold) * c.rate * 2)
	if v, _, _ := c.admit(b, now, time.Time{}, true, false, false); v != cpuRefuse {
		t.Errorf("call whose hold would pass %v: verdict %d, want refused", callerCPUMaxHold, v)
	}
	// All callers together: callerCPUMaxHeldTotal.
	for i := 0; c.held < callerCPUMaxHeldTotal; i++ {
		k := inflightKey{keyAccount, fmt.Sprintf("many-%d", i/callerCPUMaxHeld)}
		if i%callerCPUMaxHeld == 0 {
			over(k)
		}
		if v, _, _ := c.admit(k, now, time.Time{}, true, false, false); v != cpuHold {
			t.Fatalf("caller %v, call %d with %d held in all: verdict %d, want held", k, i, c.held, v)
		}
	}
	z := inflightKey{keyAccount, "z"}
	over(z)
	if v, _, _ := c.admit(z, now, time.Time{}, true, false, false); v != cpuRefuse {
		t.Errorf("a new caller's call with %d held in all: verdict %d, want refused", c.held, v)
	}
	if v, _, _ := c.admit(z, now, time.Time{}, true, false, true); v != cpuRefuse {
		t.Errorf("a new caller's admin call with %d held in all: verdict %d, want refused", c.held, v)
	}
	// With no other call running nobody waits for what the call takes:
	// it runs, whatever its share.
	if v, _, _ := c.admit(z, now, time.Time{}, false, false, false); v != cpuAdmit {
		t.Errorf("a call past its share with no other call running: verdict %d, want run", v)
	}
	// A session or admin call (runAfterHold) whose share needs longer
	// than callerCPUMaxHold, or than half its deadline, is held that long
	// and then runs.
	w := inflightKey{keyAccount, "w"}
	c2 := newCallerCPU(0.1)
	c2.procCPU = func() time.Duration { return 0 }
	c2.measure(now, 0)
	c2.contended, c2.active, c2.rate = true, 100, 0.1
	c2.buckets[w] = &cpuBucket{tokens: -time.Second, at: now, seen: now, cost: time.Millisecond}
	if v, wait, _ := c2.admit(w, now, time.Time{}, true, false, true); v != cpuHold || wait != callerCPUMaxHold {
		t.Errorf("admin call of a caller 10s short of its share: verdict %d, hold %v; want held %v", v, wait, callerCPUMaxHold)
	}
	if v, wait, _ := c2.admit(w, now, now.Add(100*time.Millisecond), true, false, true); v != cpuHold || wait != 50*time.Millisecond {
		t.Errorf("admin call with 100ms left: verdict %d, hold %v; want held 50ms", v, wait)
	}
	if v, _, _ := c2.admit(w, now, time.Time{}, true, false, false); v != cpuRefuse {
		t.Errorf("decision of the same caller: verdict %d, want refused", v)
	}
}
