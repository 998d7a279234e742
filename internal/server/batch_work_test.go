package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"google.golang.org/protobuf/proto"
)

// costlyClick is a CLICK whose two ancestors carry 4 KB of data-x each,
// for rules that read that attribute in full; 100 of them fit in a batch
// (MaxBatchBytes).
func costlyClick(sessionID string) *gatehousev1.CheckFeatureRequest {
	v := strings.Repeat("A", 4096)
	anc := make([]*gatehousev1.ElementNode, 2)
	for i := range anc {
		anc[i] = &gatehousev1.ElementNode{Tag: "div", Attributes: map[string]string{"data-x": v}}
	}
	return &gatehousev1.CheckFeatureRequest{SessionId: sessionID, Actor: agent("alice"),
		Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://shop.example.com/checkout",
		Element: &gatehousev1.Element{Tag: "button", Ancestors: anc}}
}

// TestCheckFeatures_ChecksShareThePrivacyWork: a CheckFeatures batch of
// costly checks (eight rules each read 8 KB of attributes: about 65 000
// units, well under policy.MaxPrivacyWork) is answered like single calls
// while the batch's shared work (policy.MaxBatchPrivacyWork) lasts; then
// the costly checks get the protective denial — where a single call with
// the same check is answered — and are counted; checks that need no
// privacy work are answered as ever.
func TestCheckFeatures_ChecksShareThePrivacyWork(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	e := MustStart(t, "", func(o *Options) { o.Metrics = m })
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustAllow("acme", "shop", "shop.example.com")
	for i := range 8 {
		e.MustPrivacyRule("acme", &gatehousev1.PrivacyRule{Id: fmt.Sprintf("r%d", i),
			Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: fmt.Sprintf(`[data-x*="q%d"] *`, i)})
	}
	sess := e.MustStartSession("acme").GetId()
	costly := costlyClick(sess)
	single := e.MustCheck(costly)
	if !single.GetDecision().GetAllowed() {
		t.Fatalf("the costly check alone: %v; want allowed", single.GetDecision())
	}
	chat := &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}
	chatAlone := e.MustCheck(chat)

	// 100 costly checks, a chat check after every tenth.
	var checks []*gatehousev1.CheckFeatureRequest
	for i := range 100 {
		checks = append(checks, costly)
		if i%10 == 9 {
			checks = append(checks, chat)
		}
	}
	resp, err := e.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: checks})
	if err != nil {
		t.Fatal(err)
	}
	answered, denied := 0, 0
	for i, r := range resp.GetResults() {
		d := r.GetDecision()
		if checks[i] == chat {
			if !proto.Equal(d, chatAlone.GetDecision()) {
				t.Errorf("check %d (chat): %v; want %v as alone", i, d, chatAlone.GetDecision())
			}
			continue
		}
		switch {
		case proto.Equal(d, single.GetDecision()) && denied == 0:
			answered++
		case !d.GetAllowed() && d.GetReason() == gatehousev1.Reason_REASON_ELEMENT_BLOCKED && d.GetRule() == policy.RulePrivacyWorkLimit:
			denied++
		default:
			t.Fatalf("check %d: %v after %d answered and %d denied; want the answer alone (%v) until the protective denial",
				i, d, answered, denied, single.GetDecision())
		}
	}
	// Each check costs less than MaxPrivacyWork, so at least
	// MaxBatchPrivacyWork/MaxPrivacyWork of them fit; each costs more than
	// a sixteenth of it, so far fewer than 100 do.
	if lo, hi := policy.MaxBatchPrivacyWork/policy.MaxPrivacyWork, 16*policy.MaxBatchPrivacyWork/policy.MaxPrivacyWork; answered < lo || answered > hi {
		t.Errorf("%d costly checks answered before the protective denial; want between %d and %d", answered, lo, hi)
	}
	if denied == 0 {
		t.Fatal("no check of the batch was denied: the checks do not share the work")
	}
	if got := metricValue(t, m, "gatehouse_privacy_batch_work_limit_total"); got != float64(denied) {
		t.Errorf("gatehouse_privacy_batch_work_limit_total = %v; want %d", got, denied)
	}
	if got := metricValue(t, m, "gatehouse_privacy_work_limit_total"); got != float64(denied) {
		t.Errorf("gatehouse_privacy_work_limit_total = %v; want %d", got, denied)
	}
	// The next call has its own budget again.
	if d := e.MustCheck(costly); !proto.Equal(d.GetDecision(), single.GetDecision()) {
		t.Errorf("a single call after the batch: %v; want %v", d.GetDecision(), single.GetDecision())
	}
}

// BenchmarkCheckFeatures_WorstBatch compares the costliest single decision
// (an account at the privacy rule limit whose every rule reads the
// element's attributes in full; the element just large enough to reach
// policy.MaxPrivacyWork) with a batch of 1 000 of them, called in process
// (no transport). With the checks sharing policy.MaxBatchPrivacyWork the
// batch costs about four of them plus a small cost per check, not 1 000.
func BenchmarkCheckFeatures_WorstBatch(b *testing.B) {
	e := MustStart(b, "")
	ctx := auth.NewContext(context.Background(), auth.Local)
	e.MustCreateAccount("acme")
	e.MustAllow("acme", "shop", "shop.example.com")
	a := strings.Repeat("a", 1000)
	rules := make([]*gatehousev1.PrivacyRule, 0, MaxPrivacyRules)
	for i := range MaxPrivacyRules {
		rules = append(rules, &gatehousev1.PrivacyRule{Id: fmt.Sprintf("r%04d", i), Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK,
			Selector: fmt.Sprintf(`[data-x*="%sb" i] *`, a[:700-i%3])})
	}
	for _, r := range rules {
		e.MustPrivacyRule("acme", r)
	}
	sess := e.MustStartSession("acme").GetId()
	// 1 000 rules reading an 800-byte value: 800 000 units, past the
	// limit, in a request of under 1 KB, so that 1 000 fit in one
	// message (MaxBatchBytes).
	req := &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK,
		Url: "https://shop.example.com/checkout", Element: &gatehousev1.Element{Tag: "button",
			Ancestors: []*gatehousev1.ElementNode{{Tag: "div", Attributes: map[string]string{"data-x": strings.Repeat("A", 800)}}}}}
	ds := &decisionService{s: e.srv}
	if r, err := ds.CheckFeature(ctx, req); err != nil || r.GetDecision().GetRule() != policy.RulePrivacyWorkLimit {
		b.Fatalf("the worst single decision: %v, %v; want the protective denial", r, err)
	}
	batch := &gatehousev1.CheckFeaturesRequest{Checks: make([]*gatehousev1.CheckFeatureRequest, maxChecks)}
	for i := range batch.Checks {
		batch.Checks[i] = req
	}
	if n := proto.Size(batch); n > MaxBatchBytes {
		b.Fatalf("the batch is %d bytes, more than a request may be", n)
	}
	b.Run("single", func(b *testing.B) {
		for b.Loop() {
			if _, err := ds.CheckFeature(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch1000", func(b *testing.B) {
		for b.Loop() {
			if _, err := ds.CheckFeatures(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
