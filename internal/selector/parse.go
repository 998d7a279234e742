package selector

import (
	"strconv"
	"strings"
)

// The parser below accepts the supported subset of the cascadia grammar and
// mirrors cascadia's lexical rules (identifiers, names, escapes, strings,
// whitespace) so that an accepted selector means the same thing to both.
// Anything outside the subset is rejected where it is met, which is what
// makes validation an allowlist: a token the parser does not know about
// cannot slip through.

type attrOp uint8

const (
	opExists    attrOp = iota // [a]
	opEquals                  // [a=v]
	opIncludes                // [a~=v]
	opDash                    // [a|=v]
	opPrefix                  // [a^=v]
	opSuffix                  // [a$=v]
	opSubstring               // [a*=v]
)

type attrSel struct {
	name        string // ASCII lower-case
	op          attrOp
	val         string
	lowerVal    string // strings.ToLower(val), used with insensitive
	insensitive bool
	blankVal    bool // val is empty or only white space
	// fold is the failure table of lowerVal for an ASCII-folding
	// Knuth-Morris-Pratt search; set for [a*=v i] only.
	fold []int32
}

// compound is a sequence of simple selectors that all apply to one element.
type compound struct {
	tag     string // ASCII lower-case; empty matches any element
	ids     []string
	classes []string
	attrs   []attrSel
	nots    [][]compound // each :not() argument; it matches if any entry does
}

// complexSel is a chain of compounds joined by combinators, left to right.
type complexSel struct {
	compounds []compound
	// child[i] reports whether compounds[i] and compounds[i+1] are joined
	// by ">" (otherwise by the descendant combinator).
	child []bool
}

type parser struct {
	s         string
	i         int
	compounds int
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'
}

// skipSpace skips CSS whitespace and reports whether there was any.
// Unlike cascadia it does not skip comments; they are rejected instead.
func (p *parser) skipSpace() bool {
	start := p.i
	for p.i < len(p.s) && isSpace(p.s[p.i]) {
		p.i++
	}
	return p.i > start
}

func hexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func nameStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c > 127
}

func nameChar(c byte) bool {
	return nameStart(c) || c == '-' || '0' <= c && c <= '9'
}

func toLowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// startsCompound reports whether c can begin a compound selector.
func startsCompound(c byte) bool {
	switch c {
	case '*', '#', '.', '[', ':', '-', '\\':
		return true
	}
	return nameStart(c)
}

// quoteAt renders the character starting at p.s[i] for an
// error message.
func (p *parser) quoteAt(i int) string {
	if i >= len(p.s) {
		return "end of input"
	}
	r := []rune(p.s[i:min(len(p.s), i+4)])
	return strconv.Quote(string(r[0]))
}

// unexpected builds the error for a character that cannot appear at p.i.
func (p *parser) unexpected() *Error {
	if p.eof() {
		return p.expectedAfter()
	}
	switch c := p.s[p.i]; c {
	case '+':
		return invalid(`"+" (next-sibling combinator) needs document state the service cannot see`)
	case '~':
		return invalid(`"~" (subsequent-sibling combinator) needs document state the service cannot see`)
	case '|':
		return invalid(`namespace prefixes ("|" at offset %d) are not supported`, p.i)
	case '/':
		return invalid("comments and %q (at offset %d) are not supported", "/", p.i)
	default:
		return invalid("unexpected %s at offset %d", p.quoteAt(p.i), p.i)
	}
}

// expectedAfter builds the error for input that ends where a selector is
// still needed.
func (p *parser) expectedAfter() *Error {
	j := min(p.i, len(p.s)) - 1
	for j >= 0 && isSpace(p.s[j]) {
		j--
	}
	if j < 0 {
		return invalid("expected a selector at offset %d", p.i)
	}
	if p.eof() {
		return invalid("expected a selector after %s at end of input", p.quoteAt(j))
	}
	return invalid("expected a selector after %s at offset %d, found %s", p.quoteAt(j), p.i, p.quoteAt(p.i))
}

// escape parses a backslash escape at p.i, as cascadia does.
func (p *parser) escape() (string, error) {
	if len(p.s) < p.i+2 || p.s[p.i] != '\\' {
		return "", invalid("incomplete escape sequence at offset %d", p.i)
	}
	start := p.i + 1
	c := p.s[start]
	switch {
	case c == '\r' || c == '\n' || c == '\f':
		return "", invalid("escaped line break outside a string at offset %d", p.i)
	case hexDigit(c):
		i := start
		for i < start+6 && i < len(p.s) && hexDigit(p.s[i]) {
			i++
		}
		v, _ := strconv.ParseUint(p.s[start:i], 16, 64)
		if i < len(p.s) {
			switch p.s[i] {
			case '\r':
				i++
				if i < len(p.s) && p.s[i] == '\n' {
					i++
				}
			case ' ', '\t', '\n', '\f':
				i++
			}
		}
		p.i = i
		return string(rune(v)), nil
	}
	p.i += 2
	return p.s[start : start+1], nil
}

// name parses a CSS name (identifier characters and escapes, any first
// character). ok is false if there is none at p.i.
func (p *parser) name() (string, bool, error) {
	var b strings.Builder
	i := p.i
	for i < len(p.s) {
		c := p.s[i]
		switch {
		case nameChar(c):
			start := i
			for i < len(p.s) && nameChar(p.s[i]) {
				i++
			}
			b.WriteString(p.s[start:i])
		case c == '\\':
			p.i = i
			v, err := p.escape()
			if err != nil {
				return "", false, err
			}
			i = p.i
			b.WriteString(v)
		default:
			goto done
		}
	}
done:
	if b.Len() == 0 {
		return "", false, nil
	}
	p.i = i
	return b.String(), true, nil
}

// ident parses a CSS identifier: optional leading hyphens, then a name that
// starts with a letter, underscore, non-ASCII byte or escape.
func (p *parser) ident() (string, bool, error) {
	start := p.i
	i := p.i
	for i < len(p.s) && p.s[i] == '-' {
		i++
	}
	if i >= len(p.s) || !(nameStart(p.s[i]) || p.s[i] == '\\') {
		return "", false, nil
	}
	p.i = i
	n, ok, err := p.name()
	if err != nil || !ok {
		p.i = start
		return "", ok, err
	}
	return p.s[start:i] + n, true, nil
}

// str parses a single- or double-quoted string, as cascadia does.
func (p *parser) str() (string, error) {
	start := p.i
	if len(p.s) < start+2 {
		return "", invalid("unterminated string at offset %d", start)
	}
	quote := p.s[start]
	i := start + 1
	var b strings.Builder
	for i < len(p.s) {
		switch p.s[i] {
		case '\\':
			if i+1 < len(p.s) {
				switch p.s[i+1] {
				case '\r':
					if i+2 < len(p.s) && p.s[i+2] == '\n' {
						i += 3
						continue
					}
					i += 2
					continue
				case '\n', '\f':
					i += 2
					continue
				}
			}
			p.i = i
			v, err := p.escape()
			if err != nil {
				return "", err
			}
			i = p.i
			b.WriteString(v)
		case quote:
			p.i = i + 1
			return b.String(), nil
		case '\r', '\n', '\f':
			return "", invalid("line break in string at offset %d", i)
		default:
			s := i
			for i < len(p.s) {
				if c := p.s[i]; c == quote || c == '\\' || c == '\r' || c == '\n' || c == '\f' {
					break
				}
				i++
			}
			b.WriteString(p.s[s:i])
		}
	}
	return "", invalid("unterminated string at offset %d", start)
}

// parseGroup parses the whole input as a selector list.
func (p *parser) parseGroup() ([]complexSel, error) {
	var list []complexSel
	for {
		c, err := p.parseComplex()
		if err != nil {
			return nil, err
		}
		list = append(list, c)
		if p.eof() {
			return list, nil
		}
		p.i++ // ','; parseComplex stops only there or at the end
	}
}

// parseComplex parses one selector of a list: compounds joined by
// descendant or child combinators. It stops at a top-level comma or at the
// end of input.
func (p *parser) parseComplex() (complexSel, error) {
	p.skipSpace()
	first, err := p.parseCompound(0)
	if err != nil {
		return complexSel{}, err
	}
	sel := complexSel{compounds: []compound{first}}
	for {
		space := p.skipSpace()
		if p.eof() {
			return sel, nil
		}
		child := false
		switch c := p.s[p.i]; {
		case c == ',':
			return sel, nil
		case c == '>':
			child = true
			p.i++
			p.skipSpace()
		case c == '+' || c == '~' || !space:
			return complexSel{}, p.unexpected()
		}
		next, err := p.parseCompound(0)
		if err != nil {
			return complexSel{}, err
		}
		sel.compounds = append(sel.compounds, next)
		sel.child = append(sel.child, child)
	}
}

// parseCompound parses a compound selector at :not() nesting depth depth.
func (p *parser) parseCompound(depth int) (compound, error) {
	var c compound
	if p.eof() {
		return c, p.expectedAfter()
	}
	start := p.i
	switch ch := p.s[p.i]; {
	case ch == '*':
		p.i++
	case ch == '#' || ch == '.' || ch == '[' || ch == ':':
	default:
		tag, ok, err := p.ident()
		if err != nil {
			return c, err
		}
		if !ok {
			if ch == '+' || ch == '~' || ch == '|' || ch == '/' {
				return c, p.unexpected()
			}
			return c, p.expectedAfter()
		}
		c.tag = toLowerASCII(tag)
	}
	for !p.eof() {
		var err error
		switch p.s[p.i] {
		case '#':
			p.i++
			id, ok, nerr := p.name()
			if nerr != nil {
				return c, nerr
			}
			if !ok {
				return c, invalid(`expected an id after "#" at offset %d`, p.i-1)
			}
			c.ids = append(c.ids, id)
		case '.':
			p.i++
			class, ok, nerr := p.ident()
			if nerr != nil {
				return c, nerr
			}
			if !ok {
				return c, invalid(`expected a class name after "." at offset %d`, p.i-1)
			}
			if strings.ContainsAny(class, cssSpace) {
				return c, invalid("class name %q contains white space and can never match", class)
			}
			c.classes = append(c.classes, class)
		case '[':
			var a attrSel
			a, err = p.parseAttr()
			c.attrs = append(c.attrs, a)
		case ':':
			err = p.parsePseudo(&c, depth)
		case '|':
			return c, p.unexpected()
		default:
			goto done
		}
		if err != nil {
			return c, err
		}
	}
done:
	if p.i == start {
		return c, p.expectedAfter()
	}
	p.compounds++
	if p.compounds > MaxCompounds {
		return c, invalid("selector has more than %d compound selectors", MaxCompounds)
	}
	return c, nil
}

// parseAttr parses an attribute selector starting at "[".
func (p *parser) parseAttr() (attrSel, error) {
	var a attrSel
	open := p.i
	p.i++
	p.skipSpace()
	unterminated := func() (attrSel, error) {
		return a, invalid(`unterminated attribute selector %q`, p.s[open:])
	}
	if p.eof() {
		return unterminated()
	}
	name, ok, err := p.ident()
	if err != nil {
		return a, err
	}
	if !ok {
		return a, invalid(`expected an attribute name after "[" at offset %d, found %s`, p.i, p.quoteAt(p.i))
	}
	a.name = toLowerASCII(name)
	p.skipSpace()
	if p.eof() {
		return unterminated()
	}
	if p.s[p.i] == ']' {
		p.i++
		return a, nil
	}
	var op string
	switch {
	case p.s[p.i] == '=':
		op = "="
	case p.i+1 < len(p.s) && p.s[p.i+1] == '=':
		op = p.s[p.i : p.i+2]
	default:
		return a, invalid(`expected "]" or an attribute operator at offset %d, found %s`, p.i, p.quoteAt(p.i))
	}
	switch op {
	case "=":
		a.op = opEquals
	case "~=":
		a.op = opIncludes
	case "|=":
		a.op = opDash
	case "^=":
		a.op = opPrefix
	case "$=":
		a.op = opSuffix
	case "*=":
		a.op = opSubstring
	case "!=":
		return a, invalid(`attribute operator "!=" is not standard css; use :not([%s=...]) instead`, a.name)
	default:
		return a, invalid("attribute operator %q is not supported", op)
	}
	p.i += len(op)
	p.skipSpace()
	if p.eof() {
		return unterminated()
	}
	switch p.s[p.i] {
	case '"', '\'':
		a.val, err = p.str()
		if err != nil {
			return a, err
		}
	default:
		a.val, ok, err = p.ident()
		if err != nil {
			return a, err
		}
		if !ok {
			return a, invalid(`expected an attribute value after %q at offset %d, found %s`, op, p.i, p.quoteAt(p.i))
		}
	}
	p.skipSpace()
	if p.eof() {
		return unterminated()
	}
	if c := p.s[p.i]; c == 'i' || c == 'I' {
		a.insensitive = true
		p.i++
		p.skipSpace()
		if p.eof() {
			return unterminated()
		}
	}
	if p.s[p.i] != ']' {
		return a, invalid(`expected "]" at offset %d, found %s`, p.i, p.quoteAt(p.i))
	}
	p.i++

	switch a.op {
	case opIncludes:
		if a.val == "" || strings.ContainsAny(a.val, cssSpace) {
			return a, invalid(`value %q for "~=" in [%s] must be a single word, or the test can never match`, a.val, a.name)
		}
	case opPrefix, opSuffix, opSubstring:
		if a.val == "" {
			return a, invalid(`empty value for %q in [%s] can never match`, op, a.name)
		}
	}
	a.lowerVal = strings.ToLower(a.val)
	if a.insensitive && a.op == opSubstring {
		a.fold = failureTable(a.lowerVal)
	}
	a.blankVal = strings.TrimSpace(a.val) == ""
	return a, nil
}

// statefulPseudo lists pseudo-classes whose result depends on something
// other than the element and its ancestors' tags and attributes.
var statefulPseudo = map[string]bool{
	// user interaction and navigation
	"hover": true, "focus": true, "focus-within": true, "focus-visible": true,
	"active": true, "visited": true, "link": true, "any-link": true,
	"target": true, "target-within": true, "scope": true,
	"current": true, "past": true, "future": true,
	// live form and media state
	"checked": true, "indeterminate": true, "default": true,
	"enabled": true, "disabled": true, "valid": true, "invalid": true,
	"user-valid": true, "user-invalid": true, "in-range": true,
	"out-of-range": true, "placeholder-shown": true, "autofill": true,
	"playing": true, "paused": true, "fullscreen": true, "modal": true,
	"popover-open": true, "open": true,
	// language, inherited from the document
	"lang": true, "dir": true,
	// siblings and position among siblings
	"nth-child": true, "nth-last-child": true, "nth-of-type": true,
	"nth-last-of-type": true, "first-child": true, "last-child": true,
	"first-of-type": true, "last-of-type": true, "only-child": true,
	"only-of-type": true,
	// children and text content
	"empty": true, "blank": true, "has": true, "haschild": true,
	"contains": true, "containsown": true, "matches": true, "matchesown": true,
}

// pseudoElements lists names that cascadia and browsers treat as
// pseudo-elements even with a single colon, plus common newer ones.
var pseudoElements = map[string]bool{
	"after": true, "backdrop": true, "before": true, "cue": true,
	"first-letter": true, "first-line": true, "grammar-error": true,
	"marker": true, "placeholder": true, "selection": true,
	"spelling-error": true, "file-selector-button": true, "part": true,
	"slotted": true, "highlight": true, "target-text": true,
}

// parsePseudo parses a pseudo-class starting at ":" into c.
func (p *parser) parsePseudo(c *compound, depth int) error {
	colon := p.i
	p.i++
	prefix := ":"
	if !p.eof() && p.s[p.i] == ':' {
		prefix = "::"
		p.i++
	}
	name, ok, err := p.ident()
	if err != nil {
		return err
	}
	if !ok {
		return invalid("expected a pseudo-class name after %q at offset %d", prefix, colon)
	}
	name = toLowerASCII(name)
	full := prefix + name
	switch {
	case prefix == "::" || pseudoElements[name]:
		return invalid("pseudo-element %q is not supported; rules apply to whole elements", full)
	case statefulPseudo[name]:
		return invalid("%q needs document state the service cannot see", full)
	case name == "root":
		return invalid(`":root" is not supported: the reported ancestor chain does not always start at the document root; use the "html" type selector`)
	case name == "is" || name == "where":
		return invalid("%q is not supported; write the alternatives as a selector list", full)
	case name != "not":
		return invalid("pseudo-class %q is not supported", full)
	}
	if depth >= maxNotDepth {
		return invalid(`":not()" is nested more than %d levels deep`, maxNotDepth)
	}
	if p.eof() || p.s[p.i] != '(' {
		return invalid(`expected "(" after ":not" at offset %d`, p.i)
	}
	p.i++
	var arg []compound
	for {
		p.skipSpace()
		comp, err := p.parseCompound(depth + 1)
		if err != nil {
			return err
		}
		arg = append(arg, comp)
		space := p.skipSpace()
		if p.eof() {
			return invalid(`unterminated ":not(" at offset %d`, colon)
		}
		switch ch := p.s[p.i]; {
		case ch == ')':
			p.i++
			c.nots = append(c.nots, arg)
			return nil
		case ch == ',':
			p.i++
		case ch == '>' || space && startsCompound(ch):
			return invalid(`combinators inside ":not()" are not supported (offset %d); use a compound selector such as :not(a.b)`, p.i)
		default:
			return p.unexpected()
		}
	}
}
