package selector

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
)

// This file holds the cascadia oracle used by the differential tests: it
// turns an element descriptor into an html.Node chain, evaluates cascadia
// on it, and checks that cascadia's answer does not depend on document
// state the service cannot see.

func lowerASCIIForTest(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

// elementNode converts a descriptor the way the package documents it: tag
// and attribute names lower-cased, id and class attributes taken from the
// ID and Classes fields only.
func elementNode(e Element) *html.Node {
	n := &html.Node{Type: html.ElementNode, Data: lowerASCIIForTest(e.Tag)}
	if e.ID != "" {
		n.Attr = append(n.Attr, html.Attribute{Key: "id", Val: e.ID})
	}
	if len(e.Classes) > 0 {
		n.Attr = append(n.Attr, html.Attribute{Key: "class", Val: strings.Join(e.Classes, " ")})
	}
	keys := make([]string, 0, len(e.Attributes))
	for k := range e.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		lk := lowerASCIIForTest(k)
		if lk == "id" || lk == "class" {
			continue
		}
		n.Attr = append(n.Attr, html.Attribute{Key: lk, Val: e.Attributes[k]})
	}
	return n
}

// treeOptions control how much unseen document surrounds the chain.
type treeOptions struct {
	document bool       // put the outermost ancestor under a document node
	noise    *rand.Rand // if set, add random siblings, children and text
}

// buildTree returns the node for el inside a tree holding its ancestors.
func buildTree(el Element, ancestors []Element, opt treeOptions) *html.Node {
	var parent *html.Node
	if opt.document {
		parent = &html.Node{Type: html.DocumentNode}
	}
	chain := append(slices.Clone(ancestors), el)
	var n *html.Node
	for _, e := range chain {
		n = elementNode(e)
		if parent != nil {
			if opt.noise != nil {
				addNoise(parent, opt.noise)
			}
			parent.AppendChild(n)
			if opt.noise != nil {
				addNoise(parent, opt.noise)
			}
		}
		parent = n
	}
	if opt.noise != nil {
		addNoise(n, opt.noise)
		addNoise(n, opt.noise)
	}
	return n
}

// addNoise appends a random text node or element (possibly with a child)
// to parent.
func addNoise(parent *html.Node, r *rand.Rand) {
	switch r.IntN(3) {
	case 0:
		parent.AppendChild(&html.Node{Type: html.TextNode, Data: pick(r, attrValues)})
	case 1:
		e := elementNode(randomElement(r, nil))
		if r.IntN(2) == 0 {
			e.AppendChild(elementNode(randomElement(r, nil)))
		}
		e.AppendChild(&html.Node{Type: html.TextNode, Data: "x"})
		parent.AppendChild(e)
	}
}

// cascadiaMatch evaluates src with cascadia on the plain chain.
func cascadiaMatch(t testing.TB, src string, el Element, ancestors []Element) bool {
	t.Helper()
	g, err := cascadia.ParseGroup(src)
	if err != nil {
		t.Fatalf("cascadia rejects accepted selector %q: %v", src, err)
	}
	return g.Match(buildTree(el, ancestors, treeOptions{document: true}))
}

// checkAgainstCascadia compares Match with cascadia on one chain, and checks
// that cascadia's answer stays the same when unseen siblings, children and
// text are added or the document node is removed: an accepted selector
// must not depend on them.
func checkAgainstCascadia(t testing.TB, sel *Selector, el Element, ancestors []Element, r *rand.Rand) {
	t.Helper()
	want := cascadiaMatch(t, sel.String(), el, ancestors)
	if got := sel.Match(el, ancestors); got != want {
		t.Fatalf("selector %q on %s: Match = %v, cascadia = %v", sel, describe(el, ancestors), got, want)
	}
	g, _ := cascadia.ParseGroup(sel.String())
	for _, opt := range []treeOptions{{document: false}, {document: true, noise: r}, {document: false, noise: r}} {
		if got := g.Match(buildTree(el, ancestors, opt)); got != want {
			t.Fatalf("selector %q on %s depends on unseen document state (document=%v noise=%v): %v vs %v",
				sel, describe(el, ancestors), opt.document, opt.noise != nil, got, want)
		}
	}
}

func describe(el Element, ancestors []Element) string {
	var b strings.Builder
	for _, a := range ancestors {
		b.WriteString(describeOne(a))
		b.WriteString(" > ")
	}
	b.WriteString(describeOne(el))
	return b.String()
}

func describeOne(e Element) string {
	n := elementNode(e)
	var s strings.Builder
	s.WriteString("<" + strconv.Quote(n.Data))
	for _, a := range n.Attr {
		s.WriteString(" " + a.Key + "=" + strconv.Quote(a.Val))
	}
	s.WriteString(">")
	return s.String()
}

// Vocabulary for generated elements and selectors. It deliberately mixes
// case variants, white space inside values and characters that look like
// combinators.
var (
	tags       = []string{"html", "body", "div", "span", "form", "input", "button", "a", "li", "ul", "section", "DIV", "Input", "BUTTON", ""}
	ids        = []string{"", "", "card-number", "main", "x", "X", "a b"}
	classNames = []string{"pay", "secret", "public", "checkout", "a", "b", "Pay", "a b", "", "x\ty", "en-US"}
	attrKeys   = []string{"name", "type", "data-private", "data-x", "lang", "href", "Type", "NAME", "Data-X", "id", "class", "ID"}
	attrValues = []string{"cvv", "CVV", "password", "PASSWORD", "", " ", "a+b~c", "en", "en-US", "EN-us", "x y", "pay", "-", "a-b", "secret", "İx", "ǅ"}
)

func pick(r *rand.Rand, list []string) string { return list[r.IntN(len(list))] }

// randomElement returns an element drawn from the vocabulary, extended by
// extra words when given.
func randomElement(r *rand.Rand, extra []string) Element {
	word := func(list []string) string {
		if len(extra) > 0 && r.IntN(3) == 0 {
			return pick(r, extra)
		}
		return pick(r, list)
	}
	e := Element{Tag: word(tags)}
	if r.IntN(2) == 0 {
		e.ID = word(ids)
	}
	for range r.IntN(4) {
		e.Classes = append(e.Classes, word(classNames))
	}
	if n := r.IntN(4); n > 0 {
		e.Attributes = map[string]string{}
		for range n {
			e.Attributes[word(attrKeys)] = word(attrValues)
		}
	}
	return e
}

func randomChain(r *rand.Rand, extra []string) (Element, []Element) {
	anc := make([]Element, r.IntN(7))
	for i := range anc {
		anc[i] = randomElement(r, extra)
	}
	return randomElement(r, extra), anc
}

// randomSelector returns a selector in the supported subset, built from the
// vocabulary. Some results are rejected by Compile (for example "~=" with
// a value containing a space); callers skip those.
func randomSelector(r *rand.Rand) string {
	var b strings.Builder
	for i := range 1 + r.IntN(2) {
		if i > 0 {
			b.WriteString(", ")
		}
		for j := range 1 + r.IntN(4) {
			if j > 0 {
				b.WriteString(pick(r, []string{" ", " > ", ">", "  "}))
			}
			b.WriteString(randomCompound(r, 0))
		}
	}
	return b.String()
}

func quoteCSS(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\t':
			b.WriteString(`\9 `)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func randomCompound(r *rand.Rand, depth int) string {
	var b strings.Builder
	switch r.IntN(3) {
	case 0:
		if t := pick(r, tags); t != "" {
			b.WriteString(t)
		} else {
			b.WriteString("*")
		}
	case 1:
		b.WriteString("*")
	}
	n := r.IntN(3)
	if b.Len() == 0 && n == 0 {
		n = 1
	}
	for range n {
		switch r.IntN(5) {
		case 0:
			if id := pick(r, ids); id != "" && !strings.Contains(id, " ") {
				b.WriteString("#" + id)
			} else {
				b.WriteString("#card-number")
			}
		case 1:
			c := pick(r, classNames)
			if c == "" || strings.ContainsAny(c, " \t") {
				c = "secret"
			}
			b.WriteString("." + c)
		case 2, 3:
			b.WriteString("[" + pick(r, attrKeys))
			if r.IntN(4) != 0 {
				b.WriteString(pick(r, []string{"=", "~=", "|=", "^=", "$=", "*="}))
				b.WriteString(quoteCSS(pick(r, attrValues)))
				if r.IntN(3) == 0 {
					b.WriteString(" i")
				}
			}
			b.WriteString("]")
		case 4:
			if depth < 2 {
				b.WriteString(":not(" + randomCompound(r, depth+1))
				if r.IntN(3) == 0 {
					b.WriteString(", " + randomCompound(r, depth+1))
				}
				b.WriteString(")")
			} else {
				b.WriteString(".public")
			}
		}
	}
	return b.String()
}
