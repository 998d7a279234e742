package client_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
)

// TestLocalSession_OversizedElementGoesToTheServer: an element the server
// refuses for its encoded size (over 64 KiB, each part within its own
// bounds) is not decided locally: it gets the server's INVALID_ARGUMENT,
// while one just under the bound is decided locally.
func TestLocalSession_OversizedElementGoesToTheServer(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, nil)
	lg, _ := localFixture(t, g)
	ctx := ctxT(t)
	ls := openLocal(t, dial(t, g.addr), lg, agent, answersOnly)
	element := func(ancestors int) *gatehousev1.Element {
		anc := make([]*gatehousev1.ElementNode, ancestors)
		for i := range anc {
			anc[i] = &gatehousev1.ElementNode{Tag: "div", Attributes: map[string]string{"data-x": strings.Repeat("A", 4000)}}
		}
		return &gatehousev1.Element{Tag: "button", Ancestors: anc}
	}
	req := client.CheckRequest{SessionID: lg, Actor: agent, Feature: gatehousev1.Feature_FEATURE_CLICK, URL: "https://shop.example.com/cart"}

	req.Element = element(15) // about 60 KB
	before := ls.Stats()
	if _, err := ls.Check(ctx, req); err != nil {
		t.Fatalf("element under the bound: %v", err)
	}
	if st := ls.Stats(); st.Local != before.Local+1 {
		t.Fatalf("element under the bound was not decided locally: %+v then %+v", before, st)
	}

	req.Element = element(17) // about 68 KB
	before = ls.Stats()
	_, err := ls.Check(ctx, req)
	if !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("element over the bound: %v, want the server's INVALID_ARGUMENT", err)
	}
	if st := ls.Stats(); st.Local != before.Local {
		t.Fatalf("element over the bound was decided locally: %+v then %+v", before, st)
	}
}
