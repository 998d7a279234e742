package selector

import "strings"

// chain is an element together with its ancestors, outermost first.
// Position len(anc) is the element itself.
type chain struct {
	el  *Element
	anc []Element
	b   *Budget // nil: unbounded
}

func (c chain) at(i int) *Element {
	if i == len(c.anc) {
		return c.el
	}
	return &c.anc[i]
}

// match reports whether the complex selector matches the element at the end
// of the chain.
//
// Compounds joined by ">" form rigid groups occupying consecutive
// positions. Between groups (the descendant combinator) it is enough to
// place each group, right to left, at the deepest position where it fits:
// a deeper placement leaves a superset of positions for the groups further
// left. So no backtracking is needed and the cost is at most
// O(len(chain) × len(compounds)).
func (cs *complexSel) match(c chain) bool {
	comps := cs.compounds
	j := len(comps) - 1
	pos := len(c.anc)
	// The rightmost group is anchored at the element.
	if !comps[j].match(c.at(pos), c.b) {
		return false
	}
	for j > 0 && cs.child[j-1] {
		j--
		pos--
		if pos < 0 || !comps[j].match(c.at(pos), c.b) {
			return false
		}
	}
	for j > 0 {
		// comps[j-1] and comps[j] are joined by a descendant combinator;
		// the group to place is comps[k:j].
		k := j - 1
		for k > 0 && cs.child[k-1] {
			k--
		}
		span := j - k
		found := false
		for end := pos - 1; end-span+1 >= 0; end-- {
			if c.b.Exhausted() {
				return false
			}
			if cs.groupAt(c, k, j, end) {
				pos = end - span + 1
				found = true
				break
			}
		}
		if !found {
			return false
		}
		j = k
	}
	return true
}

// groupAt reports whether compounds[k:j] match the consecutive positions
// ending at end.
func (cs *complexSel) groupAt(c chain, k, j, end int) bool {
	for t, p := j-1, end; t >= k; t, p = t-1, p-1 {
		if !cs.compounds[t].match(c.at(p), c.b) {
			return false
		}
	}
	return true
}

// match reports whether the compound matches e, charging b for the work.
// Once b is exhausted it reports false without looking at e.
func (c *compound) match(e *Element, b *Budget) bool {
	if !b.spend(1 + len(c.classes) + len(c.attrs)) {
		return false
	}
	if c.tag != "" && !equalLowerASCII(e.Tag, c.tag) {
		return false
	}
	for _, id := range c.ids {
		if e.ID != id {
			return false
		}
	}
	for _, class := range c.classes {
		if !hasClass(e.Classes, class, b) {
			return false
		}
	}
	for i := range c.attrs {
		if !c.attrs[i].match(e, b) {
			return false
		}
	}
	for _, alts := range c.nots {
		for i := range alts {
			if alts[i].match(e, b) {
				return false
			}
		}
	}
	return true
}

// equalLowerASCII reports whether s, ASCII-lower-cased, equals lower.
func equalLowerASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasClass reports whether class (which contains no white space) is one of
// the white-space separated tokens of the class list, charging b for the
// entries it reads.
func hasClass(classes []string, class string, b *Budget) bool {
	for _, entry := range classes {
		if !b.spend(1 + len(entry)) {
			return false
		}
		if entry == class || matchInclude(class, entry, false) {
			return true
		}
	}
	return false
}

// match reports whether the attribute test matches e, charging b one unit
// per attribute looked at and per byte of every value tested.
func (a *attrSel) match(e *Element, b *Budget) bool {
	switch a.name {
	case "id":
		return e.ID != "" && b.spend(len(e.ID)) && a.test(e.ID)
	case "class":
		switch {
		case len(e.Classes) == 0:
			return false
		case a.op == opExists:
			return true
		case a.op == opIncludes:
			// The value has no white space, so testing each entry is
			// the same as testing the space-joined attribute.
			for _, entry := range e.Classes {
				if !b.spend(1 + len(entry)) {
					return false
				}
				if matchInclude(a.val, entry, a.insensitive) {
					return true
				}
			}
			return false
		}
		n := len(e.Classes)
		for _, entry := range e.Classes {
			n += len(entry)
		}
		return b.spend(n) && a.test(strings.Join(e.Classes, " "))
	}
	if !b.spend(len(e.Attributes)) {
		return false
	}
	for k, v := range e.Attributes {
		// Names of the same length are compared byte by byte.
		if len(k) == len(a.name) && !b.spend(len(k)) {
			return false
		}
		if equalLowerASCII(k, a.name) && (a.op == opExists || b.spend(len(v))) && a.test(v) {
			return true
		}
	}
	return false
}

// test applies the operator to one attribute value with cascadia's
// semantics.
func (a *attrSel) test(v string) bool {
	switch a.op {
	case opExists:
		return true
	case opEquals:
		return equalValue(v, a.val, a.insensitive)
	case opIncludes:
		return matchInclude(a.val, v, a.insensitive)
	case opDash:
		if equalValue(v, a.val, a.insensitive) {
			return true
		}
		return len(v) > len(a.val) && v[len(a.val)] == '-' &&
			equalValue(v[:len(a.val)], a.val, a.insensitive)
	}
	// Prefix, suffix and substring tests never match a blank attribute
	// value. That can only matter when the selector's value is blank too.
	if a.blankVal && strings.TrimSpace(v) == "" {
		return false
	}
	val := a.val
	if a.insensitive {
		if isASCII(v) {
			// strings.ToLower(v) is the ASCII lower-casing here, so the
			// comparison can fold bytes in place instead of allocating.
			return foldedTest(a, v)
		}
		v, val = strings.ToLower(v), a.lowerVal
	}
	switch a.op {
	case opPrefix:
		return strings.HasPrefix(v, val)
	case opSuffix:
		return strings.HasSuffix(v, val)
	default: // opSubstring
		return strings.Contains(v, val)
	}
}

func equalValue(v, val string, insensitive bool) bool {
	if insensitive {
		return strings.EqualFold(v, val)
	}
	return v == val
}

// matchInclude reports whether val is one of the white-space separated
// tokens of s.
func matchInclude(val, s string, insensitive bool) bool {
	for s != "" {
		i := strings.IndexAny(s, cssSpace)
		if i == -1 {
			return equalValue(s, val, insensitive)
		}
		if equalValue(s[:i], val, insensitive) {
			return true
		}
		s = s[i+1:]
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// foldedTest applies a prefix, suffix or substring operator to the
// ASCII-lower-cased v without building it. Each test reads every byte of v
// at most twice, whatever the value: a page cannot make a selector cost more
// than its own size.
func foldedTest(a *attrSel, v string) bool {
	lowerVal := a.lowerVal
	switch a.op {
	case opPrefix:
		return len(v) >= len(lowerVal) && equalLowerASCII(v[:len(lowerVal)], lowerVal)
	case opSuffix:
		return len(v) >= len(lowerVal) && equalLowerASCII(v[len(v)-len(lowerVal):], lowerVal)
	default: // opSubstring
		return foldedContains(v, lowerVal, a.fold)
	}
}

// failureTable returns the Knuth-Morris-Pratt failure function of p:
// t[i] is the length of the longest proper prefix of p[:i+1] that is also
// its suffix.
func failureTable(p string) []int32 {
	t := make([]int32, len(p))
	k := int32(0)
	for i := 1; i < len(p); i++ {
		for k > 0 && p[i] != p[k] {
			k = t[k-1]
		}
		if p[i] == p[k] {
			k++
		}
		t[i] = k
	}
	return t
}

// foldedContains reports whether the ASCII-lower-cased s contains p, whose
// failure table is t, in time linear in len(s) (a byte-by-byte comparison at
// every offset would cost len(s) × len(p)).
func foldedContains(s, p string, t []int32) bool {
	if len(p) > len(s) {
		return false
	}
	q := int32(0)
	m := int32(len(p))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		for q > 0 && p[q] != c {
			q = t[q-1]
		}
		if p[q] == c {
			q++
			if q == m {
				return true
			}
		}
	}
	return false
}
