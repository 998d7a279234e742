package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
)

// benchSessions starts a server with the differential fixture and opens
// the Live Guide and support sessions locally.
func benchSessions(b *testing.B) (g *gatehouse, c *client.Client, lg, sup *client.LocalSession) {
	b.Helper()
	g = mustStart(b, false, nil)
	lgID, supID := localFixture(b, g)
	c = dial(b, g.addr)
	open := func(id string, a client.Actor) *client.LocalSession {
		ls, err := c.Session(ctxT(b), id, a, client.WithStaleness(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(ls.Close)
		return ls
	}
	return g, c, open(lgID, agent), open(supID, client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "bob"})
}

// benchFamilies are the decision families, each with a typical check of
// the differential fixture: co-browse navigation, clicks and typing on
// allowlisted pages, privacy-rule elements (blocked, masked, and passing
// every rule with a deep ancestor chain), iframes, switches and support
// functions.
func benchFamilies() []struct {
	name    string
	support bool
	r       client.CheckRequest
} {
	bob := client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "bob"}
	checkout := []*gatehousev1.ElementNode{{Tag: "html"}, {Tag: "body"}, {Tag: "form", Classes: []string{"checkout"}}}
	deep := make([]*gatehousev1.ElementNode, 0, 12)
	for i := range 12 {
		deep = append(deep, &gatehousev1.ElementNode{Tag: []string{"div", "section", "ul", "li"}[i%4], Classes: []string{"c" + string(rune('a'+i))}})
	}
	return []struct {
		name    string
		support bool
		r       client.CheckRequest
	}{
		{"cobrowse/navigate_allowlisted", false, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_NAVIGATE, URL: "https://shop.example.com/checkout/step2?x=1"}},
		{"cobrowse/navigate_hostile", false, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_NAVIGATE, URL: "https://shop.example.com.evil.com/"}},
		{"cobrowse/click_allowlisted", false, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CLICK, URL: "https://shop.example.com/cart",
			Element: &gatehousev1.Element{Tag: "a", Classes: []string{"product"}, Ancestors: checkout[:2]}}},
		{"cobrowse/type_allowlisted", false, client.CheckRequest{Actor: customer, Feature: gatehousev1.Feature_FEATURE_TYPE, URL: "https://shop.example.com/search",
			Element: &gatehousev1.Element{Tag: "input", Attributes: map[string]string{"name": "q"}, Ancestors: checkout[:2]}}},
		{"privacy/click_blocked", false, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CLICK, URL: "https://shop.example.com/checkout",
			Element: &gatehousev1.Element{Tag: "button", Classes: []string{"pay"}, Ancestors: checkout}}},
		{"privacy/type_masked", false, client.CheckRequest{Actor: customer, Feature: gatehousev1.Feature_FEATURE_TYPE, URL: "https://shop.example.com/checkout",
			Element: &gatehousev1.Element{Tag: "input", Id: "card-number", Ancestors: checkout}}},
		{"privacy/view_masked", false, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_VIEW_ELEMENT,
			URL: "https://shop.example.com/checkout", Element: &gatehousev1.Element{Tag: "input", Attributes: map[string]string{"name": "cvv"}, Ancestors: checkout}}},
		{"privacy/view_pass_deep", false, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_VIEW_ELEMENT,
			URL: "https://shop.example.com/checkout", Element: &gatehousev1.Element{Tag: "input", Classes: []string{"x"}, Attributes: map[string]string{"name": "email"}, Ancestors: deep}}},
		{"iframe/customer_click", false, client.CheckRequest{Actor: customer, Feature: gatehousev1.Feature_FEATURE_CLICK, URL: "https://pay.elsewhere.com/", Frame: gatehousev1.Frame_FRAME_IFRAME,
			Element: &gatehousev1.Element{Tag: "button"}}},
		{"iframe/agent_navigate", false, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_NAVIGATE, URL: "https://pay.elsewhere.com/", Frame: gatehousev1.Frame_FRAME_IFRAME}},
		{"switch/chat", false, client.CheckRequest{Actor: customer, Feature: gatehousev1.Feature_FEATURE_CHAT}},
		{"support/function_off_at_portal", true, client.CheckRequest{Actor: bob, Feature: gatehousev1.Feature_FEATURE_SEND_FILES}},
		{"support/function_off_for_rep", true, client.CheckRequest{Actor: bob, Feature: gatehousev1.Feature_FEATURE_ANNOTATIONS}},
		{"support/function_on", true, client.CheckRequest{Actor: bob, Feature: gatehousev1.Feature_FEATURE_RECEIVE_FILES}},
	}
}

// BenchmarkLocalCheck is the cost of one local decision per family. Besides
// ns/op it reports cpu-ns/op, the CPU time of the benchmark's thread per
// decision (Linux), which a loaded machine disturbs far less.
func BenchmarkLocalCheck(b *testing.B) {
	_, c, lg, sup := benchSessions(b)
	ctx := context.Background()
	for _, f := range benchFamilies() {
		ls := lg
		if f.support {
			ls = sup
		}
		b.Run(f.name, func(b *testing.B) {
			want := serverAnswer(b, c, ls, f.r)
			before := ls.Stats().Local
			b.ReportAllocs()
			done := measureCPU(b)
			for b.Loop() {
				d, err := ls.Check(ctx, f.r)
				if err != nil {
					b.Fatal(err)
				}
				if !sameAnswer(d, want) {
					b.Fatalf("local %+v, server %+v", d, want)
				}
			}
			done()
			if ls.Stats().Local == before {
				b.Fatal("not decided locally")
			}
		})
	}
}

// BenchmarkDecisionsPerSecond compares, in the same run, decisions made
// locally with the same decisions asked of a server by CheckFeature over
// loopback TCP (the daemon's server code, in this process), from parallel
// callers (16 per core). Besides decisions/s (wall clock) it reports decisions/cpu-s:
// decisions per second of CPU time of the whole process — for the RPC both
// the client's and the server's side —, i.e. decisions per second per
// core, which a shared machine disturbs far less. The ratios are logged.
func BenchmarkDecisionsPerSecond(b *testing.B) {
	_, c, lg, _ := benchSessions(b)
	for _, f := range benchFamilies() {
		if f.name != "privacy/click_blocked" && f.name != "cobrowse/navigate_allowlisted" {
			continue
		}
		r := f.r
		r.SessionID = lg.ID()
		want := serverAnswer(b, c, lg, r)
		var wall, perCPU [2]float64
		run := func(b *testing.B, i int, check func(context.Context, client.CheckRequest) (client.Decision, error)) {
			b.ReportAllocs()
			// Enough callers to keep both cores busy despite the RPC's
			// round trips.
			b.SetParallelism(16)
			cpu0, start := processCPU(), time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					d, err := check(ctx, r)
					if err != nil {
						b.Error(err)
						return
					}
					if !sameAnswer(d, want) {
						b.Errorf("answer %+v, server %+v", d, want)
						return
					}
				}
			})
			elapsed, cpu := time.Since(start), processCPU()-cpu0
			wall[i] = float64(b.N) / elapsed.Seconds()
			b.ReportMetric(wall[i], "decisions/s")
			if cpu > 0 {
				perCPU[i] = float64(b.N) / (float64(cpu) / 1e9)
				b.ReportMetric(perCPU[i], "decisions/cpu-s")
			}
		}
		localBefore := lg.Stats()
		b.Run(f.name+"/local", func(b *testing.B) { run(b, 0, lg.Check) })
		if st := lg.Stats(); st.Remote != localBefore.Remote || st.Failed != localBefore.Failed {
			b.Fatalf("local checks left the process: %+v then %+v", localBefore, st)
		}
		b.Run(f.name+"/rpc", func(b *testing.B) { run(b, 1, c.Check) })
		if wall[1] > 0 && perCPU[1] > 0 {
			b.Logf("%s: local/rpc %.0fx decisions/s, %.0fx decisions/cpu-s", f.name, wall[0]/wall[1], perCPU[0]/perCPU[1])
		}
	}
}

// serverAnswer is the server's answer (CheckFeature over the RPC) to r in
// ls's session: what every timed answer is checked against.
func serverAnswer(b *testing.B, c *client.Client, ls *client.LocalSession, r client.CheckRequest) client.Decision {
	b.Helper()
	r.SessionID = ls.ID()
	d, err := c.Check(context.Background(), r)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// sameAnswer reports whether two decisions agree in outcome, reason and rule.
func sameAnswer(a, b client.Decision) bool {
	return a.Allowed == b.Allowed && a.Reason == b.Reason && a.Rule == b.Rule
}
