package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/selector"
)

// hostileAccount has n DATA_MASK and n BUTTON_BLOCK rules on every page
// whose selectors make a naive matcher compare character by character
// against every ancestor's attribute value.
func hostileAccount(n int) *AccountState {
	a := strings.Repeat("a", 1000)
	var rules []PrivacyRule
	for i := range n {
		for _, k := range []PrivacyRuleKind{PrivacyRuleKindDataMask, PrivacyRuleKindButtonBlock} {
			rules = append(rules, PrivacyRule{ID: fmt.Sprintf("r-%d-%d", k, i), Kind: k,
				Selector: fmt.Sprintf(`[data-x*="%sb" i] *, [data-y*="%sb" i] [data-x$="b%s" i] *`, a[:700-i%3], a[:100], a[:100])})
		}
	}
	as := Compile(AccountData{Account: Account{ID: "acme"}, PrivacyRules: rules})
	if len(as.Problems) > 0 {
		panic(fmt.Sprint(as.Problems))
	}
	return as
}

// hostileElement is the largest element descriptor a decision request may
// carry, given its total size: ancestors whose attributes a hostile selector
// reads in full.
func hostileElement(ancestors, valueLen int) (*selector.Element, []selector.Element) {
	v := strings.Repeat("A", valueLen)
	anc := make([]selector.Element, ancestors)
	for i := range anc {
		anc[i] = selector.Element{Tag: "div", Attributes: map[string]string{"data-x": v, "data-y": v}}
	}
	return &selector.Element{Tag: "button"}, anc
}

func hostileSnapshot(n int) *Snapshot {
	as := hostileAccount(n)
	s := liveGuide("s-1")
	return NewSnapshot(7, map[string]*AccountState{"acme": as}, map[string]*Session{"s-1": s})
}

// TestPrivacyWorkLimit: a decision whose privacy rules would need more than
// MaxPrivacyWork is denied with the kind's reason and RulePrivacyWorkLimit,
// never allowed, and stops early.
func TestPrivacyWorkLimit(t *testing.T) {
	t.Parallel()
	snap := hostileSnapshot(1000)
	el, anc := hostileElement(256, 4096)
	for _, tc := range []struct {
		f    Feature
		want Reason
	}{{FeatureClick, ReasonElementBlocked}, {FeatureViewElement, ReasonElementMasked}, {FeatureType, ReasonElementMasked}} {
		q := &Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: tc.f, URL: page, Element: el, Ancestors: anc}
		d, err := snap.Check(q)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed || d.Reason != tc.want || d.Rule != RulePrivacyWorkLimit {
			t.Errorf("%v: %+v, want denied %v by %s", tc.f, d, tc.want, RulePrivacyWorkLimit)
		}
	}
	// A small element is evaluated in full: the rules do not match it.
	small, sanc := hostileElement(3, 20)
	d, err := snap.Check(&Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: FeatureClick, URL: page, Element: small, Ancestors: sanc})
	if err != nil || !d.Allowed {
		t.Errorf("small element: %+v, %v; want allowed", d, err)
	}
}

// TestPrivacyObservesContext: a done context ends a long evaluation with
// its error, not a decision.
func TestPrivacyObservesContext(t *testing.T) {
	t.Parallel()
	snap := hostileSnapshot(1000)
	el, anc := hostileElement(2, 10)
	q := &Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: FeatureClick, URL: page, Element: el, Ancestors: anc}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d, err := snap.CheckContext(ctx, q); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %+v, %v; want context.Canceled", d, err)
	}
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	if d, err := snap.CheckContext(dctx, q); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past deadline: %+v, %v; want context.DeadlineExceeded", d, err)
	}
	if d, err := snap.CheckContext(context.Background(), q); err != nil || !d.Allowed {
		t.Errorf("live context: %+v, %v; want allowed", d, err)
	}
}

// BenchmarkPrivacyWorstCase is the costliest decision: an account at the
// privacy rule limit whose every rule applies on the page and reads every
// ancestor's attributes, and element descriptors of several shapes:
// 256x2x110 is about the largest a request may carry (64 KiB encoded,
// server.MaxElementBytes), 256x2x4096 (2 MiB) what validation admitted
// before that limit, which the work limit still bounds here.
func BenchmarkPrivacyWorstCase(b *testing.B) {
	snap := hostileSnapshot(1000)
	for _, sz := range []struct {
		name          string
		anc, valueLen int
	}{{"256x2x4096", 256, 4096}, {"256x2x110", 256, 110}, {"16x2x64", 16, 64}} {
		el, anc := hostileElement(sz.anc, sz.valueLen)
		q := &Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: FeatureClick, URL: page, Element: el, Ancestors: anc}
		b.Run(sz.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := snap.Check(q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
