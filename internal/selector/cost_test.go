package selector

import (
	"strings"
	"testing"
	"time"
)

// adversarial returns a rule value of n bytes that almost matches a run of
// 'a's everywhere, and a page value of m bytes made of that run.
func adversarial(n, m int) (val, page string) {
	return strings.Repeat("a", n-1) + "b", strings.Repeat("A", m)
}

// TestOperatorCostLinear checks that every attribute operator, with and
// without the i flag, costs time linear in the page value: a 1000-byte rule
// value against a 4096-byte page value that defeats a naive comparison at
// every offset must cost about what a one-byte rule value costs (one pass
// over the page value), measured in the same run.
func TestOperatorCostLinear(t *testing.T) {
	val, page := adversarial(1000, 4096)
	// An ancestor chain of 256 elements, each carrying the value, makes one
	// match walk about 1 MB of attribute data.
	anc := make([]Element, 256)
	for i := range anc {
		anc[i] = withAttrs(el("div", ""), "data-x", page, "class-ish", page[:100])
	}
	target := el("button", "")
	measure := func(src string) time.Duration {
		sel := MustCompile(src)
		best := time.Duration(1<<63 - 1)
		for range 5 {
			start := time.Now()
			for range 4 {
				sel.Match(target, anc)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	base := measure(`[data-x*="b" i] *`)
	for _, op := range []string{"=", "~=", "|=", "^=", "$=", "*="} {
		for _, flag := range []string{"", " i"} {
			src := `[data-x` + op + `"` + val + `"` + flag + `] *`
			d := measure(src)
			t.Logf("%-40.40s %v (baseline %v)", src, d, base)
			if d > 10*base {
				t.Errorf("%s: %v, more than 10× the %v of one pass over the element", src, d, base)
			}
		}
	}
}

func TestFoldedContains(t *testing.T) {
	for _, tc := range []struct {
		s, p string
		want bool
	}{
		{"ABC", "abc", true},
		{"xxABCxx", "abc", true},
		{"AABAACAABAA", "aabaa", true},
		{"AABAACAABAB", "aabab", true},
		{"AABAACAABAC", "aabad", false},
		{"aaaaaaaaab", "aaab", true},
		{"aaaaaaaaa", "aaab", false},
		{"ab", "abc", false},
		{"abababc", "ababc", true},
		{"[x]", "[x]", true},
		{"@", "`", false}, // '@' is not folded to '`'
	} {
		if got := foldedContains(tc.s, tc.p, failureTable(tc.p)); got != tc.want {
			t.Errorf("foldedContains(%q, %q) = %v, want %v", tc.s, tc.p, got, tc.want)
		}
		if want := strings.Contains(strings.ToLower(tc.s), tc.p); want != tc.want {
			t.Errorf("table row %q %q disagrees with strings.Contains", tc.s, tc.p)
		}
	}
}

// BenchmarkAdversarial is the worst selector an account can store against
// the largest element a decision request may carry.
func BenchmarkAdversarial(b *testing.B) {
	val, page := adversarial(1000, 4096)
	anc := make([]Element, 256)
	for i := range anc {
		anc[i] = withAttrs(el("div", ""), "data-x", page)
	}
	for _, op := range []string{"=", "~=", "|=", "^=", "$=", "*="} {
		for _, flag := range []string{"", " i"} {
			sel := MustCompile(`[data-x` + op + `"` + val + `"` + flag + `] *`)
			b.Run(op+flag, func(b *testing.B) {
				for b.Loop() {
					sel.Match(el("button", ""), anc)
				}
			})
		}
	}
}

// TestBudgetChargesEveryInput: every part of an element a selector can make
// the matcher read in full (class names, attribute names, attribute values,
// the id) is charged to the budget, so no input escapes the bound on one
// decision's work. Each case reads far more than 2 000 bytes; a budget of
// 2 000 units must run out.
func TestBudgetChargesEveryInput(t *testing.T) {
	long := strings.Repeat("q", 4000)
	name := strings.Repeat("n", 250)
	classes := make([]string, 64)
	for i := range classes {
		classes[i] = strings.Repeat("c", 250) + string(rune('a'+i%26))
	}
	attrs := map[string]string{}
	for i := range 64 {
		attrs[name[:248]+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	anc := []Element{
		{Tag: "div", ID: long, Classes: classes, Attributes: map[string]string{"data-x": long}},
		{Tag: "div", Attributes: attrs},
	}
	for _, src := range []string{
		".zz *",                    // class names
		"[class~=zz] *",            // class names, token test
		"[class^=zz] *",            // the joined class list
		"[" + name[:250] + "] *",   // attribute names of the same length
		"[data-x*=zz] *",           // attribute value
		"[data-x*=zz i] *",         // attribute value, folded
		"[data-x=zz i] *",          // attribute value, equality
		"[data-x~=zz] *",           // attribute value, token test
		"[id*=zz] *",               // the id
		":not([data-x*=zz]) > * *", // inside :not
	} {
		sel := MustCompile(src)
		b := NewBudget(2000)
		sel.MatchBudget(Element{Tag: "a"}, anc, &b)
		if !b.Exhausted() {
			t.Errorf("%s: budget of 2000 held (%d left); the work was not charged", src, b.Left())
		}
		if unb := NewBudget(1 << 30); sel.MatchBudget(Element{Tag: "a"}, anc, &unb) != sel.Match(Element{Tag: "a"}, anc) {
			t.Errorf("%s: MatchBudget with a large budget disagrees with Match", src)
		}
	}
}

// TestBudgetExhaustedNeverMatches: work cut short anywhere, including
// inside :not() (where a cut-short test would read as "the argument did
// not match"), yields false, never a match, for every budget smaller than
// the work the full evaluation needs.
func TestBudgetExhaustedNeverMatches(t *testing.T) {
	long := strings.Repeat("q", 300)
	el := Element{Tag: "a", Classes: []string{"x", long}, Attributes: map[string]string{"data-x": long}}
	anc := []Element{{Tag: "div", ID: "app", Attributes: map[string]string{"data-x": long}}, {Tag: "form", Classes: []string{long, "y"}}}
	for _, src := range []string{
		":not([data-x*=zz])",
		"a:not([data-x$=zz i]):not(.zz)",
		"div:not([data-x^=zz]) > form:not(.zz) a",
		":not([data-x*=zz]) *, a:not([data-x=zz])",
		"a:not(:not([data-x*=q]))",
	} {
		sel := MustCompile(src)
		if !sel.Match(el, anc) {
			t.Fatalf("%s: does not match the test element", src)
		}
		full := NewBudget(1 << 30)
		sel.MatchBudget(el, anc, &full)
		need := 1<<30 - full.Left()
		for n := range need {
			b := NewBudget(n)
			if sel.MatchBudget(el, anc, &b) {
				t.Errorf("%s: budget %d of the %d needed: matched", src, n, need)
				break
			}
			if !b.Exhausted() {
				t.Errorf("%s: budget %d of the %d needed: false without running out", src, n, need)
				break
			}
		}
	}
}
