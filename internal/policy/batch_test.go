package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/selector"
)

// costlySnapshot has eight BUTTON_BLOCK rules on every page, each reading
// the data-x attribute of every ancestor in full (none matches), and an
// element whose three ancestors carry 4 KB each: one check costs about
// 100 000 units of privacy work, well under MaxPrivacyWork.
func costlySnapshot(t *testing.T) (*Snapshot, *Query) {
	t.Helper()
	var rules []PrivacyRule
	for i := range 8 {
		rules = append(rules, PrivacyRule{ID: fmt.Sprintf("r%d", i), Kind: PrivacyRuleKindButtonBlock, Selector: fmt.Sprintf(`[data-x*="q%d"] *`, i)})
	}
	as := Compile(AccountData{Account: Account{ID: "acme"}, PrivacyRules: rules})
	if len(as.Problems) > 0 {
		t.Fatal(as.Problems)
	}
	snap := NewSnapshot(7, map[string]*AccountState{"acme": as}, map[string]*Session{"s-1": liveGuide("s-1")})
	v := strings.Repeat("A", 4096)
	anc := []selector.Element{{Tag: "div", Attributes: map[string]string{"data-x": v}}, {Tag: "div", Attributes: map[string]string{"data-x": v}}, {Tag: "form", Attributes: map[string]string{"data-x": v}}}
	return snap, &Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: FeatureClick, URL: page, Element: &selector.Element{Tag: "button"}, Ancestors: anc}
}

// TestCheckBatched_SharesTheBudget: the checks of a batch share
// MaxBatchPrivacyWork. A costly check a single decision answers is answered
// in a batch too while the batch's work lasts; the check that finds too
// little left, and every costly one after it, gets the protective denial;
// checks that need no privacy work, or whose rule applies without reading
// the element, are still answered as alone.
func TestCheckBatched_SharesTheBudget(t *testing.T) {
	t.Parallel()
	snap, q := costlySnapshot(t)
	ctx := context.Background()
	single, err := snap.Check(q)
	if err != nil || !single.Allowed {
		t.Fatalf("the costly check alone: %+v, %v; want allowed", single, err)
	}
	probe := NewBatchWork()
	if d, err := snap.CheckBatched(ctx, q, probe); err != nil || d != single {
		t.Fatalf("first check of a batch: %+v, %v; want %+v", d, err, single)
	}
	cost := MaxBatchPrivacyWork - probe.left
	if cost <= MaxPrivacyWork/8 || cost >= MaxPrivacyWork {
		t.Fatalf("one check costs %d units; the test wants between %d and %d", cost, MaxPrivacyWork/8, MaxPrivacyWork)
	}
	fit := MaxBatchPrivacyWork / cost // checks whose work fits in the batch

	noElement := *q
	noElement.Element, noElement.Ancestors = nil, nil
	alone, _ := snap.Check(&noElement)
	chat := Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: FeatureChat}
	chatAlone, _ := snap.Check(&chat)

	w := NewBatchWork()
	for i := range 100 {
		d, err := snap.CheckBatched(ctx, q, w)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case i < fit && d != single:
			t.Fatalf("check %d of the batch (%d fit): %+v; want %+v as alone", i, fit, d, single)
		case i >= fit && (d.Allowed || d.Reason != ReasonElementBlocked || d.Rule != RulePrivacyWorkLimit):
			t.Fatalf("check %d of the batch (%d fit): %+v; want the protective denial", i, fit, d)
		}
	}
	if w.Limited() != 100-fit {
		t.Errorf("Limited() = %d; want %d", w.Limited(), 100-fit)
	}
	for _, c := range []struct {
		q    *Query
		want Decision
	}{{&noElement, alone}, {&chat, chatAlone}} {
		if d, err := snap.CheckBatched(ctx, c.q, w); err != nil || d != c.want {
			t.Errorf("%v after the batch's work ran out: %+v, %v; want %+v as alone", c.q.Feature, d, err, c.want)
		}
	}
	if q.work != nil {
		t.Error("CheckBatched left its budget in the query")
	}
}
