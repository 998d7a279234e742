package urlmatch

import (
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Pattern is a normalized allowlist entry. The zero Pattern matches
// nothing; every other Pattern comes from ParsePattern. Patterns are
// comparable with ==, and two patterns are equal exactly when their
// canonical String forms are equal.
type Pattern struct {
	scheme   string // "", "http" or "https"
	host     string // canonical host, as in URL.Host
	path     string // "" (any path) or a normalized path other than "/"
	port     uint16 // 0 = any port
	wildcard bool   // "*." prefix: strict subdomains only
	ip       bool   // host is an IP literal: exact match only
}

// ParsePattern parses and normalizes an allowlist entry or url_pattern:
//
//	[http:// | https://] [*.] host [:port] [/path]
//
// The host is normalized exactly like a URL host (percent-decoding, IDNA to
// punycode, lower case, a single trailing dot dropped, IPv4 and IPv6
// literals canonicalized), and the path like a URL path (dot segments and
// their percent-encoded forms resolved; a path of "/" is no restriction).
//
// Semantics, as implemented by Pattern.Match:
//   - "example.com" matches example.com and every subdomain at a label
//     boundary; "*.example.com" matches the subdomains only.
//   - IP literals match exactly; "*." with an IP literal is rejected.
//   - A scheme prefix restricts the scheme; without one, http and https
//     both match.
//   - A port restricts the URL's effective port (the default port counts),
//     so "example.com:443" matches "https://example.com/". Default ports are
//     not dropped from patterns, because that would widen them.
//   - A path is a prefix on segment boundaries: "/help" matches "/help",
//     "/help/" and "/help/x" but not "/helpdesk"; "/help/" matches "/help/"
//     and "/help/x" but not "/help", since a server may treat those
//     differently.
//
// Rejected with a *PatternError: the empty pattern; schemes other than http
// and https; userinfo, query or fragment; backslashes; "*" anywhere except a
// leading "*." label; domain labels with characters other than a-z, 0-9,
// '-' and '_' after IDNA; hosts that are public suffixes listed in the
// Public Suffix List ("com", "co.uk", "github.io"), or that are the parent
// of a wildcard rule of that list ("ck" under "*.ck"); port 0 or ports out
// of range; paths that Match would always refuse (see Match). Names that the list does not mention, such as "localhost",
// "intranet" or "corp", are accepted.
func ParsePattern(raw string) (Pattern, error) {
	s := stripTabNewline(trimC0Space(raw))
	if s == "" {
		return Pattern{}, patternErr("pattern is empty")
	}
	if strings.IndexByte(s, '\\') >= 0 {
		return Pattern{}, patternErr("pattern must not contain a backslash")
	}
	if strings.IndexByte(s, '#') >= 0 {
		return Pattern{}, patternErr("pattern must not contain a fragment (\"#\")")
	}
	if strings.IndexByte(s, '?') >= 0 {
		return Pattern{}, patternErr("pattern must not contain a query (\"?\")")
	}

	var p Pattern
	slash := strings.IndexByte(s, '/')
	if sep := strings.Index(s, "://"); sep >= 0 && (slash < 0 || sep < slash) {
		scheme := strings.ToLower(s[:sep])
		if !isSchemeName(scheme) {
			return Pattern{}, patternErr("pattern has an invalid scheme")
		}
		if scheme != "http" && scheme != "https" {
			return Pattern{}, patternErr("scheme " + strconv.Quote(truncate(scheme, 32)) + " is not permitted")
		}
		p.scheme = scheme
		s = s[sep+3:]
		slash = strings.IndexByte(s, '/')
	}
	auth, path := s, ""
	if slash >= 0 {
		auth, path = s[:slash], s[slash:]
	}
	if strings.IndexByte(auth, '@') >= 0 {
		return Pattern{}, patternErr("pattern must not contain userinfo (\"@\")")
	}
	if strings.HasPrefix(auth, "*.") {
		p.wildcard = true
		auth = auth[2:]
	}
	if strings.IndexByte(auth, '*') >= 0 || strings.IndexByte(path, '*') >= 0 {
		return Pattern{}, patternErr("wildcard \"*\" is only allowed as a leading \"*.\" label; paths are matched as prefixes")
	}
	hostStr, portStr, hasPort := splitHostPort(auth)
	if scheme := strings.ToLower(hostStr); p.scheme == "" && hasPort && !allDigits(portStr) {
		// "javascript:alert(1)", "about:blank", "http:example.com": without
		// this, the reason would be an invalid port.
		if scheme == "http" || scheme == "https" {
			return Pattern{}, patternErr("scheme must be followed by \"//\"")
		}
		if wellKnownSchemes[scheme] {
			return Pattern{}, patternErr("scheme " + strconv.Quote(scheme) + " is not permitted")
		}
	}
	if hostStr == "" {
		return Pattern{}, patternErr("pattern has no host")
	}
	host, kind, err := parseHost(hostStr)
	if err != nil {
		return Pattern{}, patternErr("invalid host: " + reasonOf(err))
	}
	p.host = host
	p.ip = kind != hostDomain
	if p.ip && p.wildcard {
		return Pattern{}, patternErr("wildcard \"*.\" is not allowed with an IP address")
	}
	if !p.ip {
		for i := 0; i < len(host); i++ {
			if c := host[i]; c != '.' && !isLDHU(c) {
				return Pattern{}, patternErr("host contains " + strconv.QuoteRune(rune(c)) + ", which is not allowed in a domain name")
			}
		}
		if err := checkPublicSuffix(host); err != nil {
			return Pattern{}, err
		}
	}
	if hasPort {
		if portStr == "" {
			return Pattern{}, patternErr("port is empty")
		}
		port, err := parsePort(portStr)
		if err != nil {
			return Pattern{}, patternErr("invalid port: " + reasonOf(err))
		}
		p.port = port
	}
	if path != "" {
		np := normalizePath(path)
		if ambiguousPath(np) {
			// Match refuses such URL paths, so the pattern could never
			// match anything.
			return Pattern{}, patternErr("path must not contain \"%2F\", \"%5C\" or a \"..;\" segment")
		}
		if np != "/" {
			p.path = np
		}
	}
	return p, nil
}

// wellKnownSchemes are non-http schemes recognized in patterns written
// without "//", for a clearer error message.
var wellKnownSchemes = map[string]bool{
	"about": true, "blob": true, "chrome": true, "chrome-extension": true,
	"data": true, "file": true, "filesystem": true, "ftp": true,
	"intent": true, "javascript": true, "mailto": true, "sms": true,
	"tel": true, "vbscript": true, "view-source": true, "ws": true, "wss": true,
}

// probeLabel is prepended to a host to find out whether a wildcard rule of
// the Public Suffix List applies directly below it.
const probeLabel = "urlmatch-probe"

// checkPublicSuffix rejects hosts that the Public Suffix List lists as a
// public suffix, and hosts directly above a wildcard rule ("ck" for "*.ck",
// "compute.amazonaws.com" for "*.compute.amazonaws.com"). PublicSuffix
// answers with the last label and icann=false for names the list does not
// mention ("localhost", "corp"); such names are not rejected. Every listed
// private-section rule has at least two labels, so "icann or contains a dot"
// identifies a listed result.
func checkPublicSuffix(host string) error {
	if ps, icann := publicsuffix.PublicSuffix(host); ps == host && (icann || strings.IndexByte(ps, '.') >= 0) {
		return patternErr("pattern is a public suffix (" + strconv.Quote(host) + ")")
	}
	probe := probeLabel + "." + host
	if ps, icann := publicsuffix.PublicSuffix(probe); ps == probe && (icann || strings.IndexByte(ps, '.') >= 0) {
		return patternErr("pattern covers public suffixes (\"*." + host + "\")")
	}
	return nil
}

func isLDHU(c byte) bool {
	return 'a' <= c && c <= 'z' || isDigit(c) || c == '-' || c == '_'
}

func isSchemeName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isSchemeByte(s[i]) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// String returns the canonical form of the pattern, for example
// "https://*.example.com:8443/help/" or "xn--bcher-kva.example". Parsing it
// with ParsePattern yields an equal Pattern. The zero Pattern yields "".
func (p Pattern) String() string {
	if p.host == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(len(p.scheme) + 3 + 2 + len(p.host) + 6 + len(p.path))
	if p.scheme != "" {
		b.WriteString(p.scheme)
		b.WriteString("://")
	}
	if p.wildcard {
		b.WriteString("*.")
	}
	b.WriteString(p.host)
	if p.port != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(uint64(p.port), 10))
	}
	b.WriteString(p.path)
	return b.String()
}

// Scheme returns "http" or "https" for a scheme-restricted pattern and ""
// otherwise.
func (p Pattern) Scheme() string { return p.scheme }

// Host returns the canonical host without the "*." prefix.
func (p Pattern) Host() string { return p.host }

// Port returns the required port, or 0 if any port matches.
func (p Pattern) Port() uint16 { return p.port }

// Path returns the required path prefix, or "" if any path matches.
func (p Pattern) Path() string { return p.path }

// IsWildcard reports whether the pattern had a "*." prefix and so matches
// strict subdomains of Host only.
func (p Pattern) IsWildcard() bool { return p.wildcard }

// IsIP reports whether Host is an IP literal, which matches only itself.
func (p Pattern) IsIP() bool { return p.ip }

// Match reports whether u, which should come from Parse, is allowed by p.
// Host comparison is exact or at a label boundary, never by substring. A
// pattern with a path never matches a URL path containing an encoded slash
// or backslash ("%2F", "%5C"), an overlong UTF-8 encoding ("%C0%AE") or a
// dot segment with parameters ("..;"),
// because servers disagree on how to resolve those. Match does not
// allocate.
func (p Pattern) Match(u URL) bool {
	if p.host == "" {
		return false
	}
	if p.scheme != "" && p.scheme != u.Scheme {
		return false
	}
	if p.ip != isIPHost(u.Host) {
		return false
	}
	if !hostMatches(p.host, p.wildcard, p.ip, u.Host) {
		return false
	}
	if p.port != 0 && p.port != u.EffectivePort() {
		return false
	}
	return p.path == "" || pathMatches(p.path, u.Path)
}

// hostMatches reports whether host h is the pattern host ph itself (unless
// wildcard) or a subdomain of it at a label boundary (unless ip).
func hostMatches(ph string, wildcard, ip bool, h string) bool {
	if len(h) == len(ph) {
		return !wildcard && h == ph
	}
	if ip || len(h) <= len(ph) {
		return false
	}
	return h[len(h)-len(ph)-1] == '.' && h[len(h)-len(ph):] == ph
}

// pathMatches reports whether path is within the prefix pp on segment
// boundaries and is free of ambiguous encodings.
func pathMatches(pp, path string) bool {
	if !strings.HasPrefix(path, pp) {
		return false
	}
	if len(path) != len(pp) && pp[len(pp)-1] != '/' && path[len(pp)] != '/' {
		return false
	}
	return !ambiguousPath(path)
}

// ambiguousPath reports whether path contains "%2F" or "%5C" (any case), an
// overlong UTF-8 encoding ("%C0%xx", "%C1%xx", "%E0%80%xx"–"%E0%9F%xx"),
// or a segment that is "." or ".." (possibly %2e-encoded) followed by ';'.
func ambiguousPath(path string) bool {
	segStart := 0
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '%':
			if i+2 < len(path) {
				a, b := path[i+1]|0x20, path[i+2]|0x20
				if a == '2' && b == 'f' || a == '5' && b == 'c' {
					return true
				}
				// Overlong UTF-8 ("%C0%AF" for "/", "%E0%80%AE" for
				// "."): some servers decode it to the ASCII byte.
				if a == 'c' && (b == '0' || b == '1') {
					return true
				}
				if a == 'e' && b == '0' && i+4 < len(path) && path[i+3] == '%' && (path[i+4] == '8' || path[i+4] == '9') {
					return true
				}
			}
		case ';':
			if seg := path[segStart:i]; isSingleDotSegment(seg) || isDoubleDotSegment(seg) {
				return true
			}
		case '/':
			segStart = i + 1
		}
	}
	return false
}
