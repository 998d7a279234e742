package selector

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/andybalholm/cascadia"
)

// MaxLength is the maximum length in bytes of a selector accepted by Compile,
// after surrounding whitespace is trimmed.
const MaxLength = 1024

// MaxCompounds is the maximum number of compound selectors (runs of simple
// selectors such as "input.card[name=cvv]") in one selector, counting those
// inside :not().
const MaxCompounds = 64

// maxNotDepth bounds how deeply :not() may nest.
const maxNotDepth = 3

// ErrInvalid is matched, via errors.Is, by every error Compile returns.
var ErrInvalid = errors.New("invalid selector")

// Error is the error Compile returns for a selector it does not accept.
type Error struct {
	// Reason is a lower-case explanation that names the offending part of
	// the selector.
	Reason string
}

// Error returns "invalid selector: " followed by the reason.
func (e *Error) Error() string { return "invalid selector: " + e.Reason }

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) *Error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// Element describes one DOM element as a session client reports it.
type Element struct {
	// Tag is the element's tag name; it is compared ASCII
	// case-insensitively.
	Tag string
	// ID is the element's id attribute; empty means the element has none.
	ID string
	// Classes is the element's class list; empty means the element has no
	// class attribute. The entries joined by spaces form the class
	// attribute value.
	Classes []string
	// Attributes holds the element's other attributes. Names are compared
	// ASCII case-insensitively; "id" and "class" entries are ignored in
	// favour of the ID and Classes fields.
	Attributes map[string]string
}

// Selector is a validated, compiled CSS selector (group).
//
// A Selector is immutable and safe for concurrent use.
type Selector struct {
	src  string
	list []complexSel
	// needs holds, per selector of the group, the Signature bits an
	// element must have for its rightmost compound to match.
	needs []Signature
}

// cssSpace is the CSS whitespace set.
const cssSpace = " \t\r\n\f"

// Compile validates s and compiles it into a Selector.
//
// Surrounding CSS whitespace is trimmed first. Any error is an *Error, and
// errors.Is(err, ErrInvalid) holds for it.
func Compile(s string) (*Selector, error) {
	src := strings.Trim(s, cssSpace)
	switch {
	case src == "":
		return nil, invalid("selector is empty")
	case len(src) > MaxLength:
		return nil, invalid("selector is %d bytes long; the limit is %d", len(src), MaxLength)
	case !utf8.ValidString(src):
		return nil, invalid("selector is not valid utf-8")
	}
	p := parser{s: src}
	list, err := p.parseGroup()
	if err != nil {
		return nil, err
	}
	// The subset parsed above is meant to be a strict subset of what
	// cascadia accepts, with the same meaning. Requiring cascadia to accept
	// it too keeps the two from drifting apart unnoticed.
	if _, cerr := cascadia.ParseGroup(src); cerr != nil {
		return nil, invalid("%s", strings.ToLower(cerr.Error()))
	}
	return &Selector{src: src, list: list, needs: needsOf(list)}, nil
}

// MustCompile is like Compile but panics if s is not accepted. It is meant
// for selectors fixed at build time.
func MustCompile(s string) *Selector {
	sel, err := Compile(s)
	if err != nil {
		panic(err)
	}
	return sel
}

// String returns the selector's source text as given to Compile, with
// surrounding whitespace trimmed.
func (s *Selector) String() string {
	if s == nil {
		return ""
	}
	return s.src
}

// Match reports whether el, whose ancestors are given outermost first
// (html or body down to el's parent), is matched by the selector.
//
// Match does not allocate for most selectors and is safe for concurrent use.
// A nil Selector matches nothing.
func (s *Selector) Match(el Element, ancestors []Element) bool {
	return s.MatchBudget(el, ancestors, nil)
}

// MatchBudget is Match with the work charged to b: roughly one unit per
// simple selector tried on an element, per attribute looked at and per byte
// of attribute value tested. Once b is exhausted MatchBudget stops and
// reports false; the caller must check b.Exhausted and not take that false
// as an answer. A nil b is unbounded.
func (s *Selector) MatchBudget(el Element, ancestors []Element, b *Budget) bool {
	if s == nil {
		return false
	}
	c := chain{el: &el, anc: ancestors, b: b}
	for i := range s.list {
		m := s.list[i].match(c)
		// Work cut short inside :not() reads as "the argument did not
		// match", which would let the compound match: a match found
		// on an exhausted budget is no answer.
		if b.Exhausted() {
			return false
		}
		if m {
			return true
		}
	}
	return false
}

// Budget bounds the work of a series of MatchBudget calls, such as all the
// rules tried for one decision. Its zero value is exhausted.
type Budget struct {
	left int
}

// NewBudget returns a budget of n units.
func NewBudget(n int) Budget { return Budget{left: n} }

// Exhausted reports whether the work charged so far exceeded the budget. A
// nil budget is never exhausted.
func (b *Budget) Exhausted() bool { return b != nil && b.left < 0 }

// Left returns the units not yet spent (negative once exhausted).
func (b *Budget) Left() int { return b.left }

// spend charges n units and reports whether the budget still holds.
func (b *Budget) spend(n int) bool {
	if b == nil {
		return true
	}
	b.left -= n
	return b.left >= 0
}

// Signature summarizes an element's tag, id and class names in 64 bits, for [Selector.MayMatch]. Compute it once per element and pass
// it to every selector tried on that element.
type Signature uint64

// SignatureOf returns el's signature: one bit for its ASCII-lower-cased
// tag, one for its id and one for each class name (each white-space
// separated token of each Classes entry). Its cost is linear in the length
// of those names. Attributes are left out: hashing them costs more than
// the rules they would rule out save.
func SignatureOf(el *Element) Signature {
	sig := sigBit(sigTag, el.Tag)
	if el.ID != "" {
		sig |= sigBit(sigID, el.ID)
	}
	for _, entry := range el.Classes {
		start := 0
		for i := 0; i <= len(entry); i++ {
			if i == len(entry) || isSpace(entry[i]) {
				if i > start {
					sig |= sigBit(sigClass, entry[start:i])
				}
				start = i + 1
			}
		}
	}
	return sig
}

// Seeds of the kinds of names in a Signature.
const (
	sigTag   = 0x9e3779b97f4a7c15
	sigID    = 0xc2b2ae3d27d4eb4f
	sigClass = 0x165667b19e3779f9
)

// sigBit hashes name's length and its first, middle and last bytes
// (ASCII-lower-cased for a tag) from seed and returns the one bit it
// selects: constant work per name, and names that differ only elsewhere
// merely share a bit, which MayMatch tolerates.
func sigBit(seed uint64, name string) Signature {
	n := len(name)
	h := seed ^ uint64(n)
	if n > 0 {
		a, m, z := name[0], name[n/2], name[n-1]
		if seed == sigTag {
			a, m, z = a|0x20, m|0x20, z|0x20 // case-insensitive enough: equal names stay equal
		}
		h ^= uint64(a) | uint64(m)<<8 | uint64(z)<<16
	}
	return 1 << ((h * 0x9e3779b97f4a7c15) >> 58)
}

// needsOf returns, per complex selector, the signature bits of the tag,
// the first id and the first class its rightmost compound names: an
// element lacking any of them cannot match that complex selector.
func needsOf(list []complexSel) []Signature {
	needs := make([]Signature, len(list))
	for i := range list {
		c := &list[i].compounds[len(list[i].compounds)-1]
		if c.tag != "" {
			needs[i] |= sigBit(sigTag, c.tag)
		}
		if len(c.ids) > 0 {
			needs[i] |= sigBit(sigID, c.ids[0])
		}
		if len(c.classes) > 0 {
			needs[i] |= sigBit(sigClass, c.classes[0])
		}
	}
	return needs
}

// MayMatch is a cheap necessary condition for Match, as browsers use to
// pick candidate rules: it reports false when, for every selector of the
// group, the element whose signature is sig lacks the tag, the id or the
// first class that the rightmost compound names; Match would then report
// false too. True means Match must be asked (a signature can hold bits
// of names the element does not have). MayMatch charges no budget and
// does not allocate. A nil Selector matches nothing.
func (s *Selector) MayMatch(sig Signature) bool {
	if s == nil {
		return false
	}
	for _, n := range s.needs {
		if sig&n == n {
			return true
		}
	}
	return false
}
