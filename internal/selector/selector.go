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
	return &Selector{src: src, list: list}, nil
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

// MayMatch is a cheap necessary condition for Match: it looks only at the
// tag, the id and the first class named by the rightmost compound of each
// selector of the group (as browsers use to pick candidate rules) and
// reports false when none of them can match el, which Match would then
// also report. True means Match must be asked. MayMatch reads el's tag,
// id and class list once per selector of the group, charges no budget and
// does not allocate. A nil Selector may match nothing.
func (s *Selector) MayMatch(el *Element) bool {
	if s == nil {
		return false
	}
	for i := range s.list {
		if s.list[i].rightmostMayMatch(el) {
			return true
		}
	}
	return false
}
