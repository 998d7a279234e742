package selector

import "strings"

// chain is an element together with its ancestors, outermost first.
// Position len(anc) is the element itself.
type chain struct {
	el  *Element
	anc []Element
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
	if !comps[j].match(c.at(pos)) {
		return false
	}
	for j > 0 && cs.child[j-1] {
		j--
		pos--
		if pos < 0 || !comps[j].match(c.at(pos)) {
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
		if !cs.compounds[t].match(c.at(p)) {
			return false
		}
	}
	return true
}

func (c *compound) match(e *Element) bool {
	if c.tag != "" && !equalLowerASCII(e.Tag, c.tag) {
		return false
	}
	for _, id := range c.ids {
		if e.ID != id {
			return false
		}
	}
	for _, class := range c.classes {
		if !hasClass(e.Classes, class) {
			return false
		}
	}
	for i := range c.attrs {
		if !c.attrs[i].match(e) {
			return false
		}
	}
	for _, alts := range c.nots {
		for i := range alts {
			if alts[i].match(e) {
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
// the white-space separated tokens of the class list.
func hasClass(classes []string, class string) bool {
	for _, entry := range classes {
		if entry == class || matchInclude(class, entry, false) {
			return true
		}
	}
	return false
}

func (a *attrSel) match(e *Element) bool {
	switch a.name {
	case "id":
		return e.ID != "" && a.test(e.ID)
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
				if matchInclude(a.val, entry, a.insensitive) {
					return true
				}
			}
			return false
		}
		return a.test(strings.Join(e.Classes, " "))
	}
	for k, v := range e.Attributes {
		if equalLowerASCII(k, a.name) && a.test(v) {
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
			return foldedTest(a.op, v, a.lowerVal)
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
// ASCII-lower-cased v without building it.
func foldedTest(op attrOp, v, lowerVal string) bool {
	switch op {
	case opPrefix:
		return len(v) >= len(lowerVal) && equalLowerASCII(v[:len(lowerVal)], lowerVal)
	case opSuffix:
		return len(v) >= len(lowerVal) && equalLowerASCII(v[len(v)-len(lowerVal):], lowerVal)
	default: // opSubstring
		for i := 0; i+len(lowerVal) <= len(v); i++ {
			if equalLowerASCII(v[i:i+len(lowerVal)], lowerVal) {
				return true
			}
		}
		return false
	}
}
