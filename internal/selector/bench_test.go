package selector

import (
	"testing"

	"github.com/andybalholm/cascadia"
)

// benchChain is a realistic click target: a card field ten levels deep.
var benchChain = []Element{
	el("html", ""),
	withAttrs(el("body", "", "logged-in", "theme-dark"), "data-page", "checkout"),
	el("div", "app"),
	el("main", "", "layout"),
	el("section", "", "panel", "panel--wide"),
	withAttrs(el("form", "pay-form", "checkout", "wide"), "data-private", "", "action", "/pay", "method", "post"),
	el("fieldset", "", "card"),
	el("div", "", "row"),
	el("div", "", "col", "col-6"),
	el("label", "", "field-wrap"),
}

var benchElement = withAttrs(el("input", "card-cvv", "field", "field--small"),
	"name", "cvv", "type", "password", "autocomplete", "cc-csc", "maxlength", "4", "data-x", "Credit-Card")

var benchSelectors = []struct{ name, src string }{
	{"class", ".field"},
	{"id", "#card-cvv"},
	{"checkout", `form.checkout input[name="cvv"]`},
	{"child", "form > fieldset > div > div > label > input"},
	{"list_not", "button.pay, [data-private] input:not(.public), #card-number"},
	{"insensitive", "input[type=PASSWORD i][autocomplete^=CC i][data-x*=Card i]"},
	{"miss_subject", "button.pay"},
	{"miss_ancestor", "nav a input"},
}

func BenchmarkMatch(b *testing.B) {
	for _, bs := range benchSelectors {
		sel := MustCompile(bs.src)
		b.Run(bs.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sel.Match(benchElement, benchChain)
			}
		})
	}
}

// BenchmarkCascadiaMatch measures the alternative of building an html.Node
// chain per call and matching it with cascadia, for comparison.
func BenchmarkCascadiaMatch(b *testing.B) {
	for _, bs := range benchSelectors {
		g, err := cascadia.ParseGroup(bs.src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bs.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.Match(buildTree(benchElement, benchChain, treeOptions{document: true}))
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		MustCompile(`form.checkout input[name="cvv"], [data-private] *:not(.public)`)
	}
}

// BenchmarkSignatureOf measures the once-per-decision cost of an element's
// signature, and MayMatch the per-rule cost of consulting it.
func BenchmarkSignatureOf(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		SignatureOf(&benchElement)
	}
}

func BenchmarkMayMatch(b *testing.B) {
	sel := MustCompile(benchSelectors[len(benchSelectors)-2].src)
	sig := SignatureOf(&benchElement)
	b.ReportAllocs()
	for b.Loop() {
		sel.MayMatch(sig)
	}
}
