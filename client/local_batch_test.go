package client_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// TestLocalSession_CheckMany: a batch is decided locally with the
// server's batch semantics — the shared privacy work budget included, so
// a batch of costly checks gets the server's protective denials at the
// same positions —, an invalid request sends the whole batch to the server
// for its field violations, another session's request is refused, and
// after the session ended every answer is SESSION_ENDED, decided locally.
func TestLocalSession_CheckMany(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, nil)
	lg, sup := localFixture(t, g)
	ctx := ctxT(t)
	// Rules that read 12 KB of attributes of the costly click below.
	for i := range 8 {
		if _, err := g.admin.CreatePrivacyRule(ctx, &gatehousev1.CreatePrivacyRuleRequest{AccountId: "acme", Rule: &gatehousev1.PrivacyRule{
			Id: fmt.Sprintf("costly-%d", i), Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: fmt.Sprintf(`[data-x*="q%d"] *`, i)}}); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, g.addr)
	ls := openLocal(t, c, lg, agent, answersOnly)
	anc := make([]*gatehousev1.ElementNode, 3)
	for i := range anc {
		anc[i] = &gatehousev1.ElementNode{Tag: "div", Attributes: map[string]string{"data-x": strings.Repeat("A", 4096)}}
	}
	costly := client.CheckRequest{SessionID: lg, Actor: agent, Feature: gatehousev1.Feature_FEATURE_CLICK, URL: "https://shop.example.com/cart",
		Element: &gatehousev1.Element{Tag: "button", Ancestors: anc}}
	chat := client.CheckRequest{SessionID: lg, Actor: customer, Feature: gatehousev1.Feature_FEATURE_CHAT}
	// 80 of them (1 MB encoded, under the server's 1 MiB for a batch).
	var batch []client.CheckRequest
	for i := range 80 {
		batch = append(batch, costly)
		if i%10 == 9 {
			batch = append(batch, chat)
		}
	}
	before := ls.Stats()
	if d := sameBatch(t, ctx, g, ls, batch); d != 0 {
		t.Fatalf("%d decisions differ", d)
	}
	if st := ls.Stats(); st.Local != before.Local+uint64(len(batch)) || st.Remote != before.Remote {
		t.Fatalf("the batch was not decided locally: %+v then %+v", before, st)
	}
	ds, err := ls.CheckMany(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	limited := 0
	for _, d := range ds {
		if d.Rule == policy.RulePrivacyWorkLimit {
			limited++
		}
	}
	if single, err := ls.Check(ctx, costly); err != nil || !single.Allowed || limited == 0 || !ds[0].Allowed {
		t.Fatalf("single costly check %+v, %v; %d of the batch limited, first %+v: want the batch's work to run out as on the server", single, err, limited, ds[0])
	}

	// An invalid request: the server's field violations, for the batch.
	bad := []client.CheckRequest{chat, {Actor: agent, Feature: gatehousev1.Feature_FEATURE_NAVIGATE}}
	_, err = ls.CheckMany(ctx, bad)
	var ce *client.Error
	if !errors.Is(err, client.ErrInvalidArgument) || !errors.As(err, &ce) || len(ce.Violations) != 1 || ce.Violations[0].Field != "checks[1].url" {
		t.Fatalf("batch with an invalid check: %v", err)
	}
	if _, err := ls.CheckMany(ctx, []client.CheckRequest{chat, {SessionID: sup, Actor: agent, Feature: gatehousev1.Feature_FEATURE_CHAT}}); !errors.Is(err, client.ErrOtherSession) {
		t.Fatalf("batch naming another session: %v", err)
	}
	for _, n := range []int{0, 1001} {
		if _, err := ls.CheckMany(ctx, make([]client.CheckRequest, n)); !errors.Is(err, client.ErrInvalidArgument) {
			t.Fatalf("batch of %d: %v, want the server's INVALID_ARGUMENT", n, err)
		}
	}

	if _, err := c.EndSession(ctx, lg, client.Ratings{}); err != nil {
		t.Fatal(err)
	}
	if err := ls.WaitClosed(ctx); err != nil {
		t.Fatal(err)
	}
	before = ls.Stats()
	later := chat
	later.MinRevision = 1 << 40 // a revision the finished watch never sees
	ds, err = ls.CheckMany(ctx, append(bad, costly, later, client.CheckRequest{Actor: client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "mallory"}, Feature: gatehousev1.Feature_FEATURE_CHAT}))
	if err != nil || len(ds) != 5 {
		t.Fatalf("after the end: %v, %v", ds, err)
	}
	for i, d := range ds {
		if d.Allowed || d.Reason != gatehousev1.Reason_REASON_SESSION_ENDED {
			t.Fatalf("after the end, check %d: %+v", i, d)
		}
	}
	if st := ls.Stats(); st.Remote != before.Remote {
		t.Fatalf("checks after the end went to the server: %+v", st)
	}
}
