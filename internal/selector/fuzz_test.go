package selector

import (
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"testing"
)

// fuzzSelectors seeds FuzzCompile and is the selector pool of FuzzMatch.
var fuzzSelectors = []string{
	"button.pay",
	"#card-number",
	"form.checkout input[name=\"cvv\"]",
	"div > .secret",
	"[data-private]",
	"input[type=password i]",
	"a, b",
	":not(.public)",
	"[data-x=\"a+b~c\"]",
	"html > body form > div input:not([type=hidden])",
	"[lang|=en] [data-x~=pay], [href^=\"https\" i]",
	"[href$=\".pdf\" i], [href*=pay], div:not(#x, .y) > *",
	"c > a > b d",
	"*:not(:not(.secret))",
	"[class~=a] [id=x]",
	"DIV[NAME=CVV i] > .Secret",
	"#\\31 23 .a\\+b",
	"[a=\"İx\" i], [a^=\"ǆ\" i], [a|=\"ǅ\" i]",
}

// fuzzRejected seeds FuzzCompile with selectors Compile must refuse.
var fuzzRejected = []string{
	":hover", "a:nth-child(2)", "a + b", "a ~ b", ":not(a + b)",
	"li:first-child", ":has(a)", "p:contains(\"x\")", "::before", "",
	" ", "#", "[", "a >", "*|*", "a/**/b", "[a!=b]", "[a#=b]", ":root",
	"[a^=\"\"]", "\\", "\"", "a\\\n", ":not(:not(:not(:not(a))))",
}

// wordsOf returns the name-like fragments of s, so that generated elements
// use the names a fuzzed selector mentions.
func wordsOf(s string) []string {
	words := strings.FieldsFunc(s, func(r rune) bool {
		return r < 128 && !nameChar(byte(r))
	})
	return append(words, s)
}

func FuzzCompile(f *testing.F) {
	for _, s := range fuzzSelectors {
		f.Add(s)
	}
	for _, s := range fuzzRejected {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		sel, err := Compile(src)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) || e.Reason == "" || sel != nil {
				t.Fatalf("Compile(%q) = %v, %v: want a nil selector and a non-empty *Error", src, sel, err)
			}
			return
		}
		if want := strings.Trim(src, cssSpace); sel.String() != want {
			t.Fatalf("String() = %q, want %q", sel.String(), want)
		}
		again, err := Compile(sel.String())
		if err != nil {
			t.Fatalf("String() %q does not compile again: %v", sel.String(), err)
		}
		h := fnv.New64a()
		h.Write([]byte(src))
		r := rand.New(rand.NewPCG(h.Sum64(), 7))
		words := wordsOf(src)
		for range 16 {
			e, anc := randomChain(r, words)
			checkAgainstCascadia(t, sel, e, anc, r)
			if again.Match(e, anc) != sel.Match(e, anc) {
				t.Fatalf("recompiled selector disagrees")
			}
		}
	})
}

// byteSource turns fuzz input into element descriptors.
type byteSource struct{ b []byte }

func (s *byteSource) next() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

// word picks from list, or for high bytes takes raw bytes from the input.
func (s *byteSource) word(list []string) string {
	c := s.next()
	if c >= 0xf0 {
		n := min(int(c&0x0f), len(s.b))
		w := string(s.b[:n])
		s.b = s.b[n:]
		return w
	}
	return list[int(c)%len(list)]
}

func (s *byteSource) element() Element {
	e := Element{Tag: s.word(tags)}
	flags := s.next()
	if flags&1 != 0 {
		e.ID = s.word(ids)
	}
	for range int(flags>>1) % 4 {
		e.Classes = append(e.Classes, s.word(classNames))
	}
	if n := int(flags>>3) % 5; n > 0 {
		e.Attributes = map[string]string{}
		for range n {
			e.Attributes[s.word(attrKeys)] = s.word(attrValues)
		}
	}
	return e
}

func FuzzMatch(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range fuzzSelectors {
		b := make([]byte, 24+r.IntN(40))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		f.Add(uint8(i), b)
	}
	f.Add(uint8(2), []byte{4, 0, 2, 0, 0x0c, 6, 0, 0x1a, 0, 0, 0})
	sels := make([]*Selector, len(fuzzSelectors))
	for i, s := range fuzzSelectors {
		sels[i] = MustCompile(s)
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		sel := sels[int(which)%len(sels)]
		src := &byteSource{b: data}
		anc := make([]Element, int(src.next())%8)
		for i := range anc {
			anc[i] = src.element()
		}
		e := src.element()
		checkAgainstCascadia(t, sel, e, anc, rand.New(rand.NewPCG(uint64(len(data)), uint64(which))))
		// A budget that holds changes nothing.
		b := NewBudget(1 << 30)
		if got, want := sel.MatchBudget(e, anc, &b), sel.Match(e, anc); got != want || b.Exhausted() {
			t.Errorf("MatchBudget = %v (exhausted %v), Match = %v", got, b.Exhausted(), want)
		}
	})
}
