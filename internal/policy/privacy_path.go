package policy

import (
	"net/url"
	"path"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
)

// A privacy rule's url_pattern decides where a protection applies, so a
// near-miss must widen the rule, never narrow it: a web server will happily
// serve /checkout for /%63heckout, //checkout, /Checkout or /checkout;x.
// The host part of the pattern matches exactly like an allowlist entry;
// the path part is compared after loosePath on both sides, as a plain
// prefix (so "/checkout" also covers "/checkouts").

// rulePattern splits a normalized pattern into its host part (matched by
// urlmatch) and its loose path prefix ("" for none).
func rulePattern(raw string) (urlmatch.Pattern, string, error) {
	p, err := urlmatch.ParsePattern(raw)
	if err != nil || p.Path() == "" {
		return p, "", err
	}
	s := p.String()
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
	}
	j := strings.IndexByte(s[start:], '/')
	host, err := urlmatch.ParsePattern(s[:start+j])
	if err != nil {
		return p, "", err
	}
	return host, loosePath(p.Path()), nil
}

// loosePath percent-decodes a path (invalid escapes stay as they are),
// lower-cases it, drops ";params" from every segment and resolves dot
// segments and repeated slashes.
func loosePath(p string) string {
	if d, err := url.PathUnescape(p); err == nil {
		p = d
	}
	p = strings.ToLower(p)
	if strings.IndexByte(p, ';') >= 0 {
		segs := strings.Split(p, "/")
		for i, s := range segs {
			if k := strings.IndexByte(s, ';'); k >= 0 {
				segs[i] = s[:k]
			}
		}
		p = strings.Join(segs, "/")
	}
	// path.Clean returns a clean rooted path as it is, without
	// allocating; "/"+p is only needed when p is not rooted (Clean
	// collapses the doubled slash otherwise).
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

// matchPage reports whether the rule applies on page u.
func (r *compiledRule) matchPage(u urlmatch.URL) bool {
	page := pageOf(u)
	return r.matchLoose(&page)
}

// pageURL is a page URL whose loose path is computed at most once, when a
// rule with a path first needs it.
type pageURL struct {
	u     urlmatch.URL
	loose string
	done  bool
}

func pageOf(u urlmatch.URL) pageURL { return pageURL{u: u} }

func (p *pageURL) loosePath() string {
	if !p.done {
		p.loose, p.done = loosePath(p.u.Path), true
	}
	return p.loose
}

// matchLoose reports whether the rule applies on the page.
func (r *compiledRule) matchLoose(p *pageURL) bool {
	if r.anyPage {
		return true
	}
	if !r.pattern.Match(p.u) {
		return false
	}
	return r.pathPrefix == "" || strings.HasPrefix(p.loosePath(), r.pathPrefix)
}

// numIndexedKinds bounds the rule kinds that are indexed; decisions only
// ask for BUTTON_BLOCK and DATA_MASK rules.
const numIndexedKinds = int(PrivacyRuleKindDataMask) + 1

// ruleIndex lists the privacy rules of one kind by where they can apply,
// as positions in AccountState.privacy (id order), ascending: rules for
// every page (including those whose url_pattern no longer compiles), and
// the others by the host of their url_pattern. A rule can only apply on a
// page whose host is its pattern host or a subdomain of it (for IP
// literals: the host itself), so a decision looks at the page host and its
// parent domains only, however many rules the account has.
type ruleIndex struct {
	anyPage []int32
	byHost  map[string][]int32
	labels  uint64 // urlmatch.LabelMask of the keys of byHost
}

func (as *AccountState) indexPrivacy() {
	for i := range as.privacy {
		r := &as.privacy[i]
		if r.kind < 0 || int(r.kind) >= numIndexedKinds {
			continue
		}
		ix := &as.privacyIndex[r.kind]
		if r.anyPage {
			ix.anyPage = append(ix.anyPage, int32(i))
			continue
		}
		if ix.byHost == nil {
			ix.byHost = map[string][]int32{}
		}
		h := r.pattern.Host()
		ix.byHost[h] = append(ix.byHost[h], int32(i))
		ix.labels |= urlmatch.LabelMask(h)
	}
}
