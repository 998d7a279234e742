package client_test

import (
	"context"
	"testing"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
)

// TestLocalCheck_NoAllocations: a local decision allocates nothing, in
// every family of BenchmarkLocalCheck and for elements with as many
// ancestors, classes and attributes as the server accepts, single and
// (per decision) batched.
func TestLocalCheck_NoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	// Not parallel: AllocsPerRun refuses to run in a parallel test.
	g := mustStart(t, false, nil)
	lgID, supID := localFixture(t, g)
	c := dial(t, g.addr)
	lg := openLocal(t, c, lgID, agent, answersOnly)
	sup := openLocal(t, c, supID, client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "bob"}, answersOnly)

	big := &gatehousev1.Element{Tag: "input", Attributes: map[string]string{}}
	for i := range 64 {
		big.Classes = append(big.Classes, "c"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		big.Attributes["data-"+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	for range 256 {
		big.Ancestors = append(big.Ancestors, &gatehousev1.ElementNode{Tag: "div", Classes: []string{"private"}, Attributes: map[string]string{"x": "y"}})
	}
	families := benchFamilies()
	families = append(families, struct {
		name    string
		support bool
		r       client.CheckRequest
	}{"privacy/largest_element", false, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_VIEW_ELEMENT,
		URL: "https://shop.example.com/checkout", Element: big}})
	ctx := context.Background()
	for _, f := range families {
		ls := lg
		if f.support {
			ls = sup
		}
		before := ls.Stats().Local
		if n := testing.AllocsPerRun(200, func() {
			if _, err := ls.Check(ctx, f.r); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per decision", f.name, n)
		}
		if ls.Stats().Local == before {
			t.Errorf("%s: not decided locally", f.name)
		}
	}
	// A batch allocates its result slice and its copy of the requests,
	// nothing per decision.
	batch := make([]client.CheckRequest, 100)
	for i := range batch {
		batch[i] = families[i%7].r // the Live Guide families
	}
	if n := testing.AllocsPerRun(50, func() {
		if _, err := lg.CheckMany(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}); n > 3 {
		t.Errorf("a batch of %d: %v allocations", len(batch), n)
	}
}
