package policy

import (
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

// loosePath is the spelling of a path a rule's prefix is compared with:
// every valid percent escape decoded (malformed ones such as "%zz", "%2"
// or a trailing "%" stay as they are, so one bad escape does not stop the
// others from being decoded), overlong UTF-8 forms of ASCII ("%C0%AF")
// read as that ASCII byte, a backslash read as a slash, lower-cased,
// ";params" dropped from every segment, and dot segments and repeated
// slashes resolved.
func loosePath(p string) string { return loosen(p, false) }

// loosePathKeepingSlashes is loosePath with encoded slashes and backslashes
// ("%2F", "%5C") kept inside their segment and overlong UTF-8 left as
// bytes, the way a server that does not decode them sees the path. A rule applies when
// either spelling is under its path: servers disagree on which one is
// meant, and a privacy rule must apply whenever it might.
func loosePathKeepingSlashes(p string) string { return loosen(p, true) }

func loosen(p string, keepSlashes bool) string {
	if isLoose(p) {
		return p // what loosenFull would return, found in one pass
	}
	return loosenFull(p, keepSlashes)
}

// isLoose reports whether p is already its own loose spelling: rooted,
// ASCII without upper case, escapes, backslashes or params, and clean (no
// empty, "." or ".." segment, no trailing slash but for "/"). Most page
// paths are; for them loosen costs one scan instead of lower-casing and
// cleaning.
func isLoose(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	seg := 1 // start of the current segment
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			switch {
			case c >= 0x80, 'A' <= c && c <= 'Z', c == '%', c == '\\', c == ';':
				return false
			case c != '/':
				continue
			}
		}
		switch p[seg:i] {
		case "":
			if i < len(p) || len(p) > 1 {
				return false // "//" or a trailing slash
			}
		case ".", "..":
			return false
		}
		seg = i + 1
	}
	return true
}

// loosenFull is loosen without the shortcut.
func loosenFull(p string, keepSlashes bool) string {
	if strings.IndexByte(p, '%') >= 0 || strings.IndexByte(p, '\\') >= 0 {
		p = decodeLenient(p, keepSlashes)
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

// decodeLenient decodes each valid %XX escape of p and keeps malformed ones
// literally, then reads overlong two- and three-byte UTF-8 encodings of
// ASCII as the ASCII byte, and a backslash as a slash. With keepSlashes, a
// slash or backslash that was encoded stays encoded ("%2f") and overlong
// forms stay as they are.
func decodeLenient(p string, keepSlashes bool) string {
	b := make([]byte, 0, len(p))
	// encoded marks, per output byte, whether it came from an escape.
	enc := make([]bool, 0, len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			b = append(b, unhex(p[i+1])<<4|unhex(p[i+2]))
			enc = append(enc, true)
			i += 2
			continue
		}
		b = append(b, p[i])
		enc = append(enc, false)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c, wasEnc, n := b[i], enc[i], 1
		switch {
		case keepSlashes:
			// A server that keeps encoded slashes does not decode
			// overlong forms either.
		case (c == 0xc0 || c == 0xc1) && i+1 < len(b) && b[i+1]&0xc0 == 0x80:
			c, n = (c&0x1f)<<6|b[i+1]&0x3f, 2
			wasEnc = true
		case c == 0xe0 && i+2 < len(b) && b[i+1]&0xe0 == 0x80 && b[i+2]&0xc0 == 0x80:
			c, n = (b[i+1]&0x3f)<<6|b[i+2]&0x3f, 3
			wasEnc = true
		}
		i += n - 1
		if c == '/' || c == '\\' {
			if keepSlashes && wasEnc {
				if c == '/' {
					out = append(out, "%2f"...)
				} else {
					out = append(out, "%5c"...)
				}
				continue
			}
			c = '/'
		}
		out = append(out, c)
	}
	return string(out)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
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
	// kept is loosePathKeepingSlashes when it differs from loose.
	kept string
	done bool
}

func pageOf(u urlmatch.URL) pageURL { return pageURL{u: u} }

func (p *pageURL) loosePaths() (string, string) {
	if !p.done {
		p.loose, p.done = loosePath(p.u.Path), true
		// Only an escape can make the two readings differ.
		if strings.IndexByte(p.u.Path, '%') >= 0 {
			if k := loosePathKeepingSlashes(p.u.Path); k != p.loose {
				p.kept = k
			}
		}
	}
	return p.loose, p.kept
}

// matchLoose reports whether the rule applies on the page.
func (r *compiledRule) matchLoose(p *pageURL) bool {
	if r.anyPage {
		return true
	}
	if !r.pattern.Match(p.u) {
		return false
	}
	if r.pathPrefix == "" {
		return true
	}
	loose, kept := p.loosePaths()
	return strings.HasPrefix(loose, r.pathPrefix) || kept != "" && strings.HasPrefix(kept, r.pathPrefix)
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
