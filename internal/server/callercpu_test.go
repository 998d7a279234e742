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

// TestCallerCPU_Share drives callerCPU with a clock of its own: in each
// millisecond, on each core, a heavy caller tries a decision of heavyCost
// and two light ones one of lightCost each. While the CPU is contended, the heavy
// one is refused once its bucket is empty, with a retry of the time its
// bucket needs, and over a second gets about its share; the light one
// everything it asks for. Alone, or while the decisions use less than half
// the CPU and do not wait longer than the queue target, nobody is refused;
// when they wait longer, the CPU is contended whatever share decisions use.
func TestCallerCPU_Share(t *testing.T) {
	t.Parallel()
	cores := runtime.GOMAXPROCS(0)
	heavy := inflightKey{keyAccount, "heavy"}
	lights := []inflightKey{{keyAccount, "light-1"}, {keyAccount, "light-2"}}
	type outcome struct {
		heavyServed, heavyRefused, lightRefused int
		maxRetry                                time.Duration
	}
	run := func(share float64, heavyCost, lightCost time.Duration, queued bool) (o outcome) {
		c := newCallerCPU(share)
		c.queued = func(time.Time) bool { return queued }
		now := time.Unix(1000, 0)
		// The process has the cores to itself and uses them all: for
		// decisions, or for other work when they do not.
		c.procCPU = func() time.Duration { return now.Sub(time.Unix(1000, 0)) * time.Duration(cores) }
		for end := now.Add(time.Second); now.Before(end); now = now.Add(time.Millisecond) {
			for range cores {
				if ok, retry := c.admit(heavy, now, queued); ok {
					c.charge(heavy, heavyCost)
					o.heavyServed++
				} else {
					o.heavyRefused++
					o.maxRetry = max(o.maxRetry, retry)
				}
				for _, light := range lights {
					if lightCost == 0 {
						break
					}
					if ok, _ := c.admit(light, now, queued); ok {
						c.charge(light, lightCost)
					} else {
						o.lightRefused++
					}
				}
			}
		}
		return o
	}
	// Heavy 1ms, light 150µs a millisecond: the light callers use 30 % of
	// the CPU, the heavy one would take the rest.
	o := run(0.25, time.Millisecond, 150*time.Microsecond, false)
	want := int((time.Duration(cores)*time.Second/4 + callerCPUBurst) / time.Millisecond)
	t.Logf("contended: heavy served %d (want about %d), refused %d, longest retry %v; light refused %d", o.heavyServed, want, o.heavyRefused, o.maxRetry, o.lightRefused)
	if o.heavyServed < want*8/10 || o.heavyServed > want*12/10 {
		t.Errorf("heavy caller served %d decisions of 1ms in a second, want about %d", o.heavyServed, want)
	}
	if o.heavyRefused == 0 || o.maxRetry <= 0 || o.maxRetry > 4*callerCPUBurst/time.Duration(cores) {
		t.Errorf("heavy caller refused %d times, longest retry %v; want refusals telling it to come back within %v", o.heavyRefused, o.maxRetry, 4*callerCPUBurst)
	}
	if o.lightRefused > 0 {
		t.Errorf("light caller refused %d times", o.lightRefused)
	}
	if o := run(0.25, time.Millisecond, 0, true); o.heavyRefused > 0 {
		t.Errorf("a caller alone was refused %d times (served %d)", o.heavyRefused, o.heavyServed)
	}
	// Decisions of 100µs and 2 x 50µs a millisecond: 20 % of the CPU the
	// process uses; not contended, whatever one caller's share of it.
	if o := run(0.06, 100*time.Microsecond, 50*time.Microsecond, false); o.heavyRefused > 0 || o.lightRefused > 0 {
		t.Errorf("uncontended CPU: heavy caller refused %d times, light %d", o.heavyRefused, o.lightRefused)
	}
	// The same while decisions wait longer than the queue target (the
	// transport, the garbage collector or writes hold the CPU): contended;
	// the heavy caller (10 %) is held to its share (6 %), the light ones
	// (5 % each) never refused.
	if o := run(0.06, 100*time.Microsecond, 50*time.Microsecond, true); o.heavyRefused == 0 || o.lightRefused > 0 {
		t.Errorf("decisions queueing: heavy caller refused %d times, light %d; want the heavy one only", o.heavyRefused, o.lightRefused)
	}
}

// TestCallerCPU_ExpensiveCallerRefusedOverGRPC: on a real server, an
// account whose decisions are costly (the largest element against rules
// that read all of it) from four callers at once that ignore RetryInfo,
// next to a light account deciding every few milliseconds on a connection
// of its own, is refused RESOURCE_EXHAUSTED with ErrorInfo shed=caller_cpu
// and a RetryInfo (by its bucket, or at the tap), counted in
// gatehouse_shed_total{reason="caller_cpu"}; the light account never is.
func TestCallerCPU_ExpensiveCallerRefusedOverGRPC(t *testing.T) {
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
	for range 4 {
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

// TestCallerCPU_ConnRefusals: the tap refuses a connection's decisions in
// the share its callers' buckets refused lately, at most nine in ten, and
// refuses nothing on a connection whose callers were not refused.
func TestCallerCPU_ConnRefusals(t *testing.T) {
	t.Parallel()
	c := newCallerCPU(0.25)
	for i := range 1000 {
		c.noteConn("hostile", true, 20*time.Millisecond)
		c.noteConn("mixed", i%10 == 0, 20*time.Millisecond)
		c.noteConn("good", false, 0)
	}
	for _, tc := range []struct {
		conn     string
		min, max int
	}{{"hostile", 890, 900}, {"mixed", 95, 105}, {"good", 0, 0}, {"unknown", 0, 0}} {
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
	}
}
