package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/selector"
	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
)

// The vocabulary of the generated rules and elements is small so that
// selectors often fit the element and rules often decide.
var (
	pfTags    = []string{"a", "button", "input", "div", "span", "form", "BUTTON"}
	pfIDs     = []string{"pay", "card", "app"}
	pfClasses = []string{"btn", "field", "checkout", "danger"}
	pfAttrs   = []string{"[name=cvv]", "[data-private]", "[title^=sub i]", "[href]"}
	pfHosts   = []string{"www.example.com", "example.com", "shop.example.com", "other.test"}
	pfPaths   = []string{"", "/checkout", "/account", "/"}
)

func pfCompound(r *rand.Rand) string {
	var b strings.Builder
	switch r.IntN(3) {
	case 0:
		b.WriteString(pfTags[r.IntN(len(pfTags))])
	case 1:
		b.WriteString("*")
	}
	for range r.IntN(3) {
		switch r.IntN(5) {
		case 0:
			b.WriteString("#" + pfIDs[r.IntN(len(pfIDs))])
		case 1, 2:
			b.WriteString("." + pfClasses[r.IntN(len(pfClasses))])
		case 3:
			b.WriteString(pfAttrs[r.IntN(len(pfAttrs))])
		case 4:
			b.WriteString(":not(." + pfClasses[r.IntN(len(pfClasses))] + ")")
		}
	}
	if b.Len() == 0 {
		b.WriteString("*")
	}
	return b.String()
}

func pfSelector(r *rand.Rand) string {
	var parts []string
	for range 1 + r.IntN(2) {
		s := pfCompound(r)
		for range r.IntN(3) {
			s = pfCompound(r) + []string{" ", " > "}[r.IntN(2)] + s
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func pfElement(r *rand.Rand) selector.Element {
	e := selector.Element{Tag: pfTags[r.IntN(len(pfTags))]}
	if r.IntN(3) == 0 {
		e.ID = pfIDs[r.IntN(len(pfIDs))]
	}
	for range r.IntN(3) {
		e.Classes = append(e.Classes, pfClasses[r.IntN(len(pfClasses))])
	}
	if r.IntN(4) == 0 {
		// One class entry holding two tokens.
		e.Classes = append(e.Classes, pfClasses[r.IntN(len(pfClasses))]+" "+pfClasses[r.IntN(len(pfClasses))])
	}
	if r.IntN(2) == 0 {
		// Names of different lengths: the work an attribute test is
		// charged then does not depend on the map's iteration order.
		e.Attributes = map[string]string{"name": "cvv", "title": "Submit", "data-private": ""}
	}
	return e
}

func pfAccount(r *rand.Rand, n int) *AccountState {
	rules := make([]PrivacyRule, n)
	for i := range rules {
		rules[i] = PrivacyRule{ID: fmt.Sprintf("r-%03d", i), Kind: PrivacyRuleKind(1 + r.IntN(2)), Selector: pfSelector(r)}
		if r.IntN(40) == 0 {
			rules[i].Selector = "div[" // does not compile: matches every element
		}
		if r.IntN(2) == 0 {
			rules[i].URLPattern = pfHosts[r.IntN(len(pfHosts))] + pfPaths[r.IntN(len(pfPaths))]
		}
	}
	return Compile(AccountData{Account: Account{ID: "acme"}, PrivacyRules: rules})
}

// TestPrivacyPrefilter_SameDecisions evaluates random accounts' privacy
// rules on random elements and pages with and without the prefilter that
// passes over rules whose selector cannot fit the element: the decisions,
// including which rule decided, are identical, and the prefilter never
// spends more work. With budgets small enough to run out, a prefiltered
// evaluation only gives the protective denial where the full one does too.
func TestPrivacyPrefilter_SameDecisions(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	features := []Feature{FeatureClick, FeatureViewElement, FeatureType}
	decided, pruned, cases := 0, 0, 0
	for range 300 {
		as := pfAccount(r, 1+r.IntN(30))
		for range 40 {
			el := pfElement(r)
			anc := make([]selector.Element, r.IntN(5))
			for i := range anc {
				anc[i] = pfElement(r)
			}
			q := &Query{Feature: features[r.IntN(len(features))], Element: &el, Ancestors: anc}
			if r.IntN(20) == 0 {
				q.Element, q.Ancestors = nil, nil
			}
			u, err := urlmatch.Parse("https://" + pfHosts[r.IntN(len(pfHosts))] + []string{"/checkout/x", "/Account", "/", "/other"}[r.IntN(4)])
			if err != nil {
				t.Fatal(err)
			}
			var wFull, wPre int
			full, err1 := as.evalPrivacy(context.Background(), q, u, privacyEval{budget: MaxPrivacyWork, work: &wFull})
			pre, err2 := as.evalPrivacy(context.Background(), q, u, privacyEval{budget: MaxPrivacyWork, prefilter: true, work: &wPre})
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			cases++
			if full != pre {
				t.Fatalf("element %+v on %s (%v): full %+v, prefiltered %+v\nrules %+v", el, u, q.Feature, full, pre, as.PrivacyRules())
			}
			if wPre > wFull {
				t.Fatalf("prefiltered evaluation spent %d units, the full one %d; element %+v anc %+v on %s (%v) -> %+v\nrules %+v", wPre, wFull, el, anc, u, q.Feature, full, as.PrivacyRules())
			}
			if !full.Allowed {
				decided++
			}
			if wPre < wFull {
				pruned++
			}
			// A budget that runs out part of the way.
			if wFull > 1 {
				b := 1 + r.IntN(wFull-1)
				full, _ = as.evalPrivacy(context.Background(), q, u, privacyEval{budget: b})
				pre, _ = as.evalPrivacy(context.Background(), q, u, privacyEval{budget: b, prefilter: true})
				if pre.Rule == RulePrivacyWorkLimit && full.Rule != RulePrivacyWorkLimit {
					t.Fatalf("budget %d: prefiltered %+v, full %+v", b, pre, full)
				}
				if full.Rule != RulePrivacyWorkLimit && full != pre {
					t.Fatalf("budget %d: full %+v, prefiltered %+v", b, full, pre)
				}
			}
		}
	}
	t.Logf("%d cases, %d decided by a rule, %d cheaper with the prefilter", cases, decided, pruned)
	if decided < cases/10 || cases-decided < cases/10 || pruned < cases/10 {
		t.Errorf("generator too weak: %d of %d decided by a rule, %d pruned", decided, cases, pruned)
	}
}
