package selector

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

func el(tag, id string, classes ...string) Element {
	return Element{Tag: tag, ID: id, Classes: classes}
}

func withAttrs(e Element, kv ...string) Element {
	e.Attributes = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Attributes[kv[i]] = kv[i+1]
	}
	return e
}

// checkout is html > body > form.checkout#pay-form > div.row > (element).
var checkout = []Element{
	el("html", ""),
	el("body", "", "logged-in"),
	withAttrs(el("form", "pay-form", "checkout", "wide"), "data-private", "", "action", "/pay"),
	el("div", "", "row"),
}

var cvv = withAttrs(el("input", "card-cvv", "field"), "name", "cvv", "type", "password")

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		sel       string
		el        Element
		ancestors []Element
		want      bool
	}{
		// type, universal, id, class
		{"input", cvv, checkout, true},
		{"button", cvv, checkout, false},
		{"*", cvv, checkout, true},
		{"*", cvv, nil, true},
		{"#card-cvv", cvv, checkout, true},
		{"#CARD-CVV", cvv, checkout, false},
		{"#card", cvv, checkout, false},
		{"input#card-cvv.field", cvv, checkout, true},
		{".field", cvv, checkout, true},
		{".Field", cvv, checkout, false},
		{".field.other", cvv, checkout, false},
		{".a", el("div", "", "x", "a"), nil, true},
		{".a", el("div", "", "x a"), nil, true},
		{".a", el("div", "", "ab"), nil, false},
		{".a", el("div", ""), nil, false},
		{"#x", el("div", ""), nil, false},
		{"div#x#x", el("div", "x"), nil, true},
		{"#x#y", el("div", "x"), nil, false},

		// case rules: tag and attribute names are case-insensitive
		{"INPUT", cvv, checkout, true},
		{"input", el("INPUT", ""), nil, true},
		{"Input", el("iNpUt", ""), nil, true},
		{"[NAME=cvv]", cvv, checkout, true},
		{"[name=cvv]", withAttrs(el("input", ""), "NAME", "cvv"), nil, true},
		{"[name=CVV]", cvv, checkout, false},
		{"[name=CVV i]", cvv, checkout, true},
		{"input[type=PASSWORD i]", cvv, checkout, true},
		{"input[type=PASSWORD]", cvv, checkout, false},

		// attribute operators
		{"[name]", cvv, checkout, true},
		{"[value]", cvv, checkout, false},
		{"[data-private]", el("span", ""), checkout, false},
		{"[data-private] input", cvv, checkout, true},
		{"[name=\"cvv\"]", cvv, checkout, true},
		{"[name=cv]", cvv, checkout, false},
		{"[rel~=b]", withAttrs(el("a", ""), "rel", "a b c"), nil, true},
		{"[rel~=b]", withAttrs(el("a", ""), "rel", "abc"), nil, false},
		{"[rel~=B i]", withAttrs(el("a", ""), "rel", "a b"), nil, true},
		{"[lang|=en]", withAttrs(el("p", ""), "lang", "en"), nil, true},
		{"[lang|=en]", withAttrs(el("p", ""), "lang", "en-US"), nil, true},
		{"[lang|=en]", withAttrs(el("p", ""), "lang", "english"), nil, false},
		{"[lang|=EN i]", withAttrs(el("p", ""), "lang", "en-US"), nil, true},
		{"[href^=https]", withAttrs(el("a", ""), "href", "https://x"), nil, true},
		{"[href^=https]", withAttrs(el("a", ""), "href", "http://x"), nil, false},
		{"[href^=HTTPS i]", withAttrs(el("a", ""), "href", "Https://x"), nil, true},
		{"[href$=\".pdf\"]", withAttrs(el("a", ""), "href", "/a.pdf"), nil, true},
		{"[href$=\".pdf\"]", withAttrs(el("a", ""), "href", "/a.PDF"), nil, false},
		{"[href$=\".pdf\" i]", withAttrs(el("a", ""), "href", "/a.PDF"), nil, true},
		{"[href*=pay]", withAttrs(el("a", ""), "href", "/checkout/pay/1"), nil, true},
		{"[href*=pay]", withAttrs(el("a", ""), "href", "/checkout"), nil, false},
		{"[href*=PAY i]", withAttrs(el("a", ""), "href", "/Checkout/pAy/1"), nil, true},
		{"[href*=PAYS i]", withAttrs(el("a", ""), "href", "/Checkout/pAy"), nil, false},
		{"[href^=\"/CH\" i]", withAttrs(el("a", ""), "href", "/c"), nil, false},
		{"[a*=\"\u00e9\" i]", withAttrs(el("a", ""), "a", "CAF\u00c9"), nil, true},
		{"[a^=x i]", withAttrs(el("a", ""), "a", "X\u00e9"), nil, true},
		{"[a$=\"\u00c9\" i]", withAttrs(el("a", ""), "a", "caf\u00e9"), nil, true},
		{"[data-x=\"a+b~c\"]", withAttrs(el("i", ""), "data-x", "a+b~c"), nil, true},
		{"[a=\"\"]", withAttrs(el("i", ""), "a", ""), nil, true},
		// cascadia never matches a blank value with ^=, $= or *=
		{"[a*=\" \"]", withAttrs(el("i", ""), "a", " "), nil, false},
		{"[a^=\" \"]", withAttrs(el("i", ""), "a", "  "), nil, false},
		{"[a*=\" \"]", withAttrs(el("i", ""), "a", "x y"), nil, true},
		{"[a$=\" \" i]", withAttrs(el("i", ""), "a", "X "), nil, true},
		{"[a=\"\"]", el("i", ""), nil, false},

		// id and class as attributes come from the ID and Classes fields
		{"[id=card-cvv]", cvv, checkout, true},
		{"[id]", el("div", ""), nil, false},
		{"[class~=field]", cvv, checkout, true},
		{"[class=\"checkout wide\"] input", cvv, checkout, true},
		{"[class^=check] input", cvv, checkout, true},
		{"[class]", el("div", ""), nil, false},
		{"#spoof", withAttrs(el("div", ""), "id", "spoof"), nil, false},
		{".spoof", withAttrs(el("div", ""), "class", "spoof"), nil, false},

		// combinators
		{"form input", cvv, checkout, true},
		{"form > input", cvv, checkout, false},
		{"form > div > input", cvv, checkout, true},
		{"div > input", cvv, checkout, true},
		{"body > div > input", cvv, checkout, false},
		{"html input", cvv, checkout, true},
		{"html > body form > div input", cvv, checkout, true},
		{"html > form input", cvv, checkout, false},
		{"form.checkout input[name=\"cvv\"]", cvv, checkout, true},
		{"form.other input", cvv, checkout, false},
		{"input input", cvv, checkout, false},
		{"div input", cvv, nil, false},
		{"input > *", cvv, checkout, false},
		{"form div", cvv, checkout, false}, // the element itself is no div
		{"div .row", el("div", "", "row"), []Element{el("div", "")}, true},
		{"div .row", el("div", "", "row"), nil, false},
		// the first placement of "a > b" (deepest) fails "c >", a higher one works
		{"c > a > b d", el("d", ""), []Element{el("c", ""), el("a", ""), el("b", ""), el("x", ""), el("a", ""), el("b", "")}, true},
		{"c > a > b d", el("d", ""), []Element{el("x", ""), el("a", ""), el("b", ""), el("c", ""), el("a", ""), el("b", "")}, true},
		{"c > a > b d", el("d", ""), []Element{el("x", ""), el("a", ""), el("b", ""), el("x", ""), el("a", ""), el("b", "")}, false},
		// "e" only fits above the deepest placement of "a > b"
		{"e a > b d", el("d", ""), []Element{el("a", ""), el("b", ""), el("e", ""), el("a", ""), el("b", "")}, true},
		{"e a > b d", el("d", ""), []Element{el("a", ""), el("b", ""), el("x", ""), el("a", ""), el("b", "")}, false},
		{"a b c", el("c", ""), []Element{el("b", ""), el("a", "")}, false},
		{"a b c", el("c", ""), []Element{el("a", ""), el("b", "")}, true},

		// selector lists
		{"button, input", cvv, checkout, true},
		{"button, a", cvv, checkout, false},
		{"nav a, form > div > input.field", cvv, checkout, true},

		// :not
		{":not(.public)", cvv, checkout, true},
		{":not(.field)", cvv, checkout, false},
		{"input:not([type=text])", cvv, checkout, true},
		{"input:not([type=text], [type=password])", cvv, checkout, false},
		{":not(:not(.field))", cvv, checkout, true},
		{"form:not(.checkout) input", cvv, checkout, false},
		{"*:not(form) > input", cvv, checkout, true},
		{":not(*)", cvv, checkout, false},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.sel, describeOne(tc.el)), func(t *testing.T) {
			sel := MustCompile(tc.sel)
			if got := sel.Match(tc.el, tc.ancestors); got != tc.want {
				t.Errorf("Match(%s) = %v, want %v", describe(tc.el, tc.ancestors), got, tc.want)
			}
			// The table doubles as a differential test.
			if got := cascadiaMatch(t, tc.sel, tc.el, tc.ancestors); got != tc.want {
				t.Errorf("cascadia disagrees with the table: %v", got)
			}
		})
	}
}

// TestMatchDoesNotModifyInput checks that matching leaves the descriptor
// untouched, since callers may share it across goroutines.
func TestMatchDoesNotModifyInput(t *testing.T) {
	e := withAttrs(el("INPUT", "X", "B", "a"), "NAME", "Cvv")
	anc := []Element{el("FORM", "", "C")}
	MustCompile("form.C input.B[name=cvv i][name^=C i]").Match(e, anc)
	if e.Tag != "INPUT" || e.Classes[0] != "B" || e.Attributes["NAME"] != "Cvv" || anc[0].Tag != "FORM" {
		t.Errorf("input modified: %+v %+v", e, anc)
	}
}

func TestMatchConcurrent(t *testing.T) {
	sel := MustCompile("form.checkout input[name=cvv], [data-private] *:not(.public)")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if !sel.Match(cvv, checkout) {
					t.Error("no match")
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestDifferential compares Match with cascadia on generated selectors and
// element chains.
func TestDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	selectors, chains, matches := 0, 0, 0
	n := 1500
	if testing.Short() {
		n = 200
	}
	for selectors < n {
		src := randomSelector(r)
		sel, err := Compile(src)
		if err != nil {
			continue
		}
		selectors++
		words := wordsOf(src)
		for range 40 {
			e, anc := randomChain(r, words)
			checkAgainstCascadia(t, sel, e, anc, r)
			chains++
			if sel.Match(e, anc) {
				matches++
			}
		}
	}
	t.Logf("%d selectors, %d chains, %d matches", selectors, chains, matches)
	if matches < chains/50 {
		t.Errorf("only %d of %d generated cases match; the generator no longer exercises matching", matches, chains)
	}
}

// TestDeepChain checks that matching stays linear on long ancestor chains
// with many descendant combinators (a naive backtracking matcher takes
// exponential time here).
func TestDeepChain(t *testing.T) {
	anc := make([]Element, 2000)
	for i := range anc {
		anc[i] = el("div", "")
	}
	src := "span" + repeat(" div", 40) + " div"
	sel := MustCompile(src)
	if sel.Match(el("div", ""), anc) {
		t.Error("matched without a span ancestor")
	}
	anc[0] = el("span", "")
	if !sel.Match(el("div", ""), anc) {
		t.Error("no match with a span ancestor")
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

// TestMayMatchIsNecessary: on generated selectors and element chains,
// MayMatch is false only where Match is false too, and it does rule out a
// good share of the non-matching cases (else it would save nothing).
func TestMayMatchIsNecessary(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	selectors, chains, pruned, misses := 0, 0, 0, 0
	for selectors < 1500 {
		src := randomSelector(r)
		sel, err := Compile(src)
		if err != nil {
			continue
		}
		selectors++
		words := wordsOf(src)
		for range 40 {
			e, anc := randomChain(r, words)
			chains++
			m, may := sel.Match(e, anc), sel.MayMatch(SignatureOf(&e))
			if m && !may {
				t.Fatalf("%q matches %+v (ancestors %+v) but MayMatch is false", src, e, anc)
			}
			if !m {
				misses++
				if !may {
					pruned++
				}
			}
		}
	}
	t.Logf("%d selectors, %d chains, %d misses, %d ruled out by MayMatch", selectors, chains, misses, pruned)
	if pruned < misses/4 {
		t.Errorf("MayMatch ruled out only %d of %d misses", pruned, misses)
	}
	var nilSel *Selector
	if nilSel.MayMatch(SignatureOf(&Element{Tag: "a"})) {
		t.Error("nil selector: MayMatch is true")
	}
}
