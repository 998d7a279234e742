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
	return path.Clean("/" + p)
}

// matchPage reports whether the rule applies on page u.
func (r *compiledRule) matchPage(u urlmatch.URL) bool {
	if r.anyPage {
		return true
	}
	if !r.pattern.Match(u) {
		return false
	}
	return r.pathPrefix == "" || strings.HasPrefix(loosePath(u.Path), r.pathPrefix)
}
