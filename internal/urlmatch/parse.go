package urlmatch

import (
	"strconv"
	"strings"
)

// URL is a parsed, normalized http or https URL. Values returned by Parse
// satisfy these invariants: Scheme is "http" or "https"; Host is a
// lower-case ASCII domain name (IDNs in punycode, no trailing dot, no empty
// labels), a dotted-quad IPv4 address, or a bracketed compressed IPv6
// address; Port is 0 when the URL uses the scheme's default port; Path
// starts with "/", has no dot segments and is percent-encoded like a
// browser would send it. Userinfo, query and fragment are not kept.
type URL struct {
	// Scheme is "http" or "https".
	Scheme string
	// Host is the canonical host, for example "xn--bcher-kva.example",
	// "127.0.0.1" or "[::1]".
	Host string
	// Port is the explicit port, or 0 for the scheme's default port.
	Port uint16
	// Path is the normalized path; it starts with "/".
	Path string
}

// String returns the URL as scheme://host[:port]path. Parsing the result
// yields the same URL.
func (u URL) String() string {
	var b strings.Builder
	b.Grow(len(u.Scheme) + 3 + len(u.Host) + 6 + len(u.Path))
	b.WriteString(u.Scheme)
	b.WriteString("://")
	b.WriteString(u.Host)
	if u.Port != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(uint64(u.Port), 10))
	}
	b.WriteString(u.Path)
	return b.String()
}

// EffectivePort returns Port, or the scheme's default port (80 for http,
// 443 for https) when Port is 0.
func (u URL) EffectivePort() uint16 {
	if u.Port != 0 {
		return u.Port
	}
	return defaultPort(u.Scheme)
}

// IsIP reports whether the host is an IPv4 or IPv6 literal.
func (u URL) IsIP() bool { return isIPHost(u.Host) }

func defaultPort(scheme string) uint16 {
	switch scheme {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}

// Parse parses raw the way a browser parses a URL typed or linked without a
// base URL (WHATWG URL Standard, special schemes), and normalizes it.
//
// Errors wrap ErrNotPermitted when raw has a syntactically valid scheme other
// than http or https (javascript:, data:, file:, blob:, about:,
// view-source:, ftp:, ws:, mailto:, ...); the rest of such a URL is not
// examined. Note that "localhost:8080" has the scheme "localhost" by these
// rules. Errors wrap ErrInvalid for everything that is not a URL: the empty
// string, input without a scheme (a relative reference such as
// "example.com/x" or "//example.com" cannot be resolved without a base),
// "http://" and other URLs without a host, ports that are not decimal or are
// out of range, port 0, forbidden host code points, invalid IPv4 or IPv6
// literals, and hosts that fail IDNA. Error messages never repeat the input
// (they name the scheme only if it is a well-known one such as
// "javascript"), because URLs can carry credentials.
//
// Parse follows the standard except where it is stricter: it additionally
// rejects port 0, domain hosts with empty labels or beyond DNS length limits,
// and IDNA results that are not a fixed point of the mapping; and it drops a
// single trailing dot from domain hosts.
func Parse(raw string) (URL, error) {
	if u, ok := parseFast(raw); ok {
		return u, nil
	}
	return parseFull(raw)
}

// parseFull is Parse without the fast path.
func parseFull(raw string) (URL, error) {
	s := stripTabNewline(trimC0Space(raw))
	if s == "" {
		return URL{}, invalid("empty URL")
	}
	if !isAlpha(s[0]) {
		return URL{}, invalid("missing scheme")
	}
	i := 1
	for i < len(s) && isSchemeByte(s[i]) {
		i++
	}
	if i == len(s) || s[i] != ':' {
		return URL{}, invalid("missing scheme")
	}
	scheme := strings.ToLower(s[:i])
	if scheme != "http" && scheme != "https" {
		// Only well-known schemes are named: for input like
		// "admin:secret@host" the "scheme" is a user name.
		if wellKnownSchemes[scheme] {
			return URL{}, notPermitted("scheme " + strconv.Quote(scheme) + " is not permitted")
		}
		return URL{}, notPermitted("scheme is not permitted")
	}
	rest := s[i+1:]

	// Special authority (ignore) slashes: any run of '/' and '\'.
	for len(rest) > 0 && (rest[0] == '/' || rest[0] == '\\') {
		rest = rest[1:]
	}
	end := strings.IndexAny(rest, "/\\?#")
	if end < 0 {
		end = len(rest)
	}
	auth, tail := rest[:end], rest[end:]
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		auth = auth[at+1:] // userinfo is never the host
	}
	hostStr, portStr, _ := splitHostPort(auth)
	if hostStr == "" {
		return URL{}, invalid("missing host")
	}
	host, _, err := parseHost(hostStr)
	if err != nil {
		return URL{}, err
	}
	port, err := parsePort(portStr)
	if err != nil {
		return URL{}, err
	}
	if port == defaultPort(scheme) {
		port = 0
	}
	if q := strings.IndexAny(tail, "?#"); q >= 0 {
		tail = tail[:q]
	}
	return URL{Scheme: scheme, Host: host, Port: port, Path: normalizePath(tail)}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// parsePort parses the WHATWG port: ASCII digits only, at most 65535.
// The empty string means no port. Port 0 is rejected by this package.
func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, nil
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, invalid("port is not a decimal number")
		}
		n = n*10 + int(s[i]-'0')
		if n > 65535 {
			return 0, invalid("port out of range")
		}
	}
	if n == 0 {
		return 0, invalid("port 0 is not allowed")
	}
	return uint16(n), nil
}

// splitHostPort splits an authority (without userinfo) at the first ':'
// outside brackets, like the WHATWG host state.
func splitHostPort(auth string) (host, port string, hasPort bool) {
	inside := false
	for i := 0; i < len(auth); i++ {
		switch auth[i] {
		case '[':
			inside = true
		case ']':
			inside = false
		case ':':
			if !inside {
				return auth[:i], auth[i+1:], true
			}
		}
	}
	return auth, "", false
}

// trimC0Space removes leading and trailing C0 control or space characters.
func trimC0Space(s string) string {
	for len(s) > 0 && s[0] <= 0x20 {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] <= 0x20 {
		s = s[:len(s)-1]
	}
	return s
}

// stripTabNewline removes every ASCII tab, LF and CR.
func stripTabNewline(s string) string {
	if !strings.ContainsAny(s, "\t\n\r") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\t' && c != '\n' && c != '\r' {
			b = append(b, c)
		}
	}
	return string(b)
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isSchemeByte(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '+' || c == '-' || c == '.'
}

// normalizePath runs the WHATWG path state for a special URL over raw, which
// is empty or starts with '/' or '\' and contains no '?' or '#'. '\' is a
// separator, "." and ".." segments (also written "%2e", ".%2E", "%2e%2e",
// ...) are resolved, and bytes outside the path percent-encode set's
// complement are percent-encoded. The result starts with "/".
func normalizePath(raw string) string {
	if cleanPath(raw) {
		return raw
	}
	return normalizePathFull(raw)
}

// normalizePathFull is normalizePath without the shortcut for clean paths.
func normalizePathFull(raw string) string {
	if len(raw) > 0 && (raw[0] == '/' || raw[0] == '\\') {
		raw = raw[1:]
	}
	segs := make([]string, 0, 8)
	var buf []byte
	for i := 0; i <= len(raw); i++ {
		atEnd := i == len(raw)
		if !atEnd && raw[i] != '/' && raw[i] != '\\' {
			c := raw[i]
			if needsPathEscape(c) {
				buf = append(buf, '%', upperHex[c>>4], upperHex[c&15])
			} else {
				buf = append(buf, c)
			}
			continue
		}
		seg := string(buf)
		buf = buf[:0]
		switch {
		case isDoubleDotSegment(seg):
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			if atEnd {
				segs = append(segs, "")
			}
		case isSingleDotSegment(seg):
			if atEnd {
				segs = append(segs, "")
			}
		default:
			segs = append(segs, seg)
		}
	}
	n := 0
	for _, s := range segs {
		n += 1 + len(s)
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(s)
	}
	return b.String()
}

const upperHex = "0123456789ABCDEF"

// needsPathEscape reports whether c is in the WHATWG path percent-encode set
// (C0 controls, space, '"', '#', '<', '>', '?', '`', '{', '}', and every
// byte above '~'). Bytes of invalid UTF-8 are escaped one by one.
func needsPathEscape(c byte) bool {
	if c <= 0x20 || c >= 0x7f {
		return true
	}
	switch c {
	case '"', '#', '<', '>', '?', '`', '{', '}':
		return true
	}
	return false
}

func isSingleDotSegment(s string) bool {
	return s == "." || strings.EqualFold(s, "%2e")
}

func isDoubleDotSegment(s string) bool {
	switch len(s) {
	case 2:
		return s == ".."
	case 4:
		return strings.EqualFold(s, ".%2e") || strings.EqualFold(s, "%2e.")
	case 6:
		return strings.EqualFold(s, "%2e%2e")
	}
	return false
}

// parseFast parses the common shape of a page URL in one pass and without
// allocating: "http://" or "https://" in lower case, a host of lower-case
// letters, digits, '-' and '.' with non-empty labels within DNS limits, no
// "xn--" label, a last label that starts with a letter and no trailing
// dot, an optional port, and a path that needs no percent-encoding and has
// no '\' and no dot segment (query and fragment may hold anything). For
// such input every step of the full parser is the identity, so the result
// is a set of substrings of raw and equals what the full parser returns.
// Anything else reports false and goes through the full parser.
func parseFast(raw string) (URL, bool) {
	var u URL
	var i int
	switch {
	case strings.HasPrefix(raw, "https://"):
		u.Scheme, i = "https", len("https://")
	case strings.HasPrefix(raw, "http://"):
		u.Scheme, i = "http", len("http://")
	default:
		return URL{}, false
	}
	// Host: labels of [a-z0-9-], up to ':', '/', '?', '#' or the end.
	hostStart, labelStart := i, i
	for ; i < len(raw); i++ {
		c := raw[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' {
			continue
		}
		if c != '.' {
			break
		}
		if !fastLabelOK(raw[labelStart:i]) {
			return URL{}, false
		}
		labelStart = i + 1
	}
	last := raw[labelStart:i]
	if !fastLabelOK(last) || last[0] < 'a' || last[0] > 'z' || i-hostStart > maxHostLen {
		// An empty last label is a trailing dot; a last label starting
		// with a digit may be an IPv4 address.
		return URL{}, false
	}
	u.Host = raw[hostStart:i]
	if i < len(raw) && raw[i] == ':' {
		j := i + 1
		for j < len(raw) && isDigit(raw[j]) {
			j++
		}
		port, err := parsePort(raw[i+1 : j])
		if err != nil {
			return URL{}, false
		}
		if port != defaultPort(u.Scheme) {
			u.Port = port
		}
		i = j
	}
	if i == len(raw) || raw[i] == '?' || raw[i] == '#' {
		u.Path = "/"
		return u, true
	}
	end := i
	for end < len(raw) && raw[end] != '?' && raw[end] != '#' {
		end++
	}
	if !cleanPath(raw[i:end]) {
		return URL{}, false
	}
	u.Path = raw[i:end]
	return u, true
}

// cleanPath reports whether normalizePath(raw) is raw itself: raw starts
// with '/' and has no '\', no byte to percent-encode and no dot segment
// (also percent-encoded).
func cleanPath(raw string) bool {
	if raw == "" || raw[0] != '/' {
		return false
	}
	segStart := 1
	for i := 1; i <= len(raw); i++ {
		if i < len(raw) && raw[i] != '/' {
			if c := raw[i]; c == '\\' || needsPathEscape(c) {
				return false
			}
			continue
		}
		if seg := raw[segStart:i]; seg != "" && (seg[0] == '.' || seg[0] == '%') && (isSingleDotSegment(seg) || isDoubleDotSegment(seg)) {
			return false
		}
		segStart = i + 1
	}
	return true
}

// fastLabelOK reports whether a host label is acceptable to parseFast:
// non-empty, within the DNS limit and not an "xn--" label (which needs
// IDNA validation).
func fastLabelOK(l string) bool {
	return l != "" && len(l) <= maxLabelLen && !strings.HasPrefix(l, "xn--")
}
