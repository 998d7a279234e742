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

// benchFamilies are one typical check per decision family.
func benchFamilies() []struct {
	name    string
	support bool
	r       client.CheckRequest
} {
	bob := client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "bob"}
	return []struct {
		name    string
		support bool
		r       client.CheckRequest
	}{
		{"navigate_allowlisted", false, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_NAVIGATE, URL: "https://shop.example.com/checkout/step2?x=1"}},
		{"navigate_hostile", false, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_NAVIGATE, URL: "https://shop.example.com.evil.com/"}},
		{"switch_chat", false, client.CheckRequest{Actor: customer, Feature: gatehousev1.Feature_FEATURE_CHAT}},
		{"click_privacy", false, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CLICK, URL: "https://shop.example.com/checkout",
			Element: &gatehousev1.Element{Tag: "button", Classes: []string{"pay"}, Ancestors: []*gatehousev1.ElementNode{{Tag: "html"}, {Tag: "form", Classes: []string{"checkout"}}}}}},
		{"view_element_masked", false, client.CheckRequest{Actor: client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "alice"}, Feature: gatehousev1.Feature_FEATURE_VIEW_ELEMENT,
			URL: "https://shop.example.com/checkout", Element: &gatehousev1.Element{Tag: "input", Attributes: map[string]string{"name": "cvv"}}}},
		{"iframe_customer", false, client.CheckRequest{Actor: customer, Feature: gatehousev1.Feature_FEATURE_CLICK, URL: "https://pay.elsewhere.com/", Frame: gatehousev1.Frame_FRAME_IFRAME}},
		{"support_function", true, client.CheckRequest{Actor: bob, Feature: gatehousev1.Feature_FEATURE_SEND_FILES}},
		{"support_allowed", true, client.CheckRequest{Actor: bob, Feature: gatehousev1.Feature_FEATURE_RECEIVE_FILES}},
	}
}

// BenchmarkLocalCheck is the cost of one local decision per family.
func BenchmarkLocalCheck(b *testing.B) {
	_, _, lg, sup := benchSessions(b)
	ctx := context.Background()
	for _, f := range benchFamilies() {
		ls := lg
		if f.support {
			ls = sup
		}
		b.Run(f.name, func(b *testing.B) {
			before := ls.Stats().Local
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ls.Check(ctx, f.r); err != nil {
					b.Fatal(err)
				}
			}
			if ls.Stats().Local == before {
				b.Fatal("not decided locally")
			}
		})
	}
}

// BenchmarkDecisionsPerSecond compares decisions per second decided
// locally with CheckFeature calls to an in-process server on loopback, in
// the same run, from parallel callers.
func BenchmarkDecisionsPerSecond(b *testing.B) {
	_, c, lg, _ := benchSessions(b)
	r := benchFamilies()[3].r // a privacy-rule click: the costliest family
	r.SessionID = lg.ID()
	run := func(b *testing.B, check func(context.Context, client.CheckRequest) (client.Decision, error)) {
		b.ReportAllocs()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := check(ctx, r); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
	}
	b.Run("local", func(b *testing.B) { run(b, lg.Check) })
	b.Run("rpc", func(b *testing.B) { run(b, c.Check) })
}
