package urlmatch

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

var fuzzURLSeeds = []string{
	"https://test.com/",
	"https://test.com.evil.net/",
	"https://test.com@evil.net/",
	"https://test.com:pw@evil.net/",
	`https://evil.net\@test.com`,
	`https://test.com\@evil.net`,
	"https:/\\test.com",
	"http:test.com",
	"//test.com",
	"  https://te\tst.c\nom/  ",
	"https://%74est%2ecom/a/%2e%2e/b",
	"HTTPS://TEST.COM.:443/",
	"https://bücher.example/",
	"https://xn--bcher-kva.example/",
	"https://test。com/",
	"https://tеst.com/",
	"http://0x7f.1/",
	"http://2130706433/",
	"http://0177.0.0.1/",
	"http://127.1/",
	"http://127.0.0.1./",
	"http://[::1]/",
	"http://[0:0::1]:8080/",
	"http://[::1]]/",
	"http://[::ffff:1.2.3.4]/",
	"https://test.com:8443/help/../admin",
	"https://test.com/help/%2e%2e/admin?x#y",
	"javascript:alert(1)",
	"data:text/html,x",
	"view-source:https://test.com/",
	"http://",
	"https:///",
	"http://a.xn--/",
	"http://xn--.com/",
	"",
}

// FuzzParse checks that Parse never panics and that everything it accepts is
// normalized: parsing the serialized URL again gives the same URL.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzURLSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := Parse(raw)
		if err != nil {
			if errors.Is(err, ErrInvalid) == errors.Is(err, ErrNotPermitted) {
				t.Fatalf("Parse(%q): error %v must wrap exactly one of ErrInvalid, ErrNotPermitted", raw, err)
			}
			if (u != URL{}) {
				t.Fatalf("Parse(%q): non-zero URL with error", raw)
			}
			return
		}
		checkURLInvariants(t, raw, u)
		v, err := Parse(u.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", raw, u.String(), err)
		}
		if v != u {
			t.Fatalf("Parse(%q) = %+v, but Parse(%q) = %+v", raw, u, u.String(), v)
		}
		// Other parsers must see the same host and port in the serialized
		// form, at least for ordinary hosts. (net/url rejects some paths
		// that browsers accept, such as "/%zz", so only the origin is
		// compared.)
		if isPlainHost(u.Host) {
			origin := URL{Scheme: u.Scheme, Host: u.Host, Port: u.Port, Path: "/"}.String()
			nu, err := url.Parse(origin)
			if err != nil {
				t.Fatalf("net/url cannot parse %q: %v", u.String(), err)
			}
			wantHost := strings.Trim(u.Host, "[]")
			wantPort := ""
			if u.Port != 0 {
				wantPort = strconv.Itoa(int(u.Port))
			}
			if nu.Hostname() != wantHost || nu.Port() != wantPort || nu.Scheme != u.Scheme {
				t.Fatalf("net/url reads %q as %q %q %q", u.String(), nu.Scheme, nu.Hostname(), nu.Port())
			}
		}
	})
}

func checkURLInvariants(t *testing.T, raw string, u URL) {
	t.Helper()
	if u.Scheme != "http" && u.Scheme != "https" {
		t.Fatalf("Parse(%q): scheme %q", raw, u.Scheme)
	}
	h := u.Host
	if h == "" || strings.HasSuffix(h, ".") || strings.HasPrefix(h, ".") || strings.Contains(h, "..") {
		t.Fatalf("Parse(%q): bad host %q", raw, h)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c >= 0x80 || 'A' <= c && c <= 'Z' || c <= 0x20 || c == 0x7f || strings.IndexByte("#%/:<>?@[\\]^|", c) >= 0 && !(u.IsIP() && strings.IndexByte("[]:", c) >= 0) {
			t.Fatalf("Parse(%q): host %q contains %q", raw, h, c)
		}
	}
	if strings.HasPrefix(h, "[") != strings.HasSuffix(h, "]") || strings.Count(h, "[") > 1 || strings.Count(h, "]") > 1 {
		t.Fatalf("Parse(%q): unbalanced brackets in host %q", raw, h)
	}
	if !u.IsIP() && len(h) > maxHostLen {
		t.Fatalf("Parse(%q): host too long", raw)
	}
	if u.Port == defaultPort(u.Scheme) && u.Port != 0 {
		t.Fatalf("Parse(%q): default port %d kept", raw, u.Port)
	}
	p := u.Path
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#\\ \t\r\n") {
		t.Fatalf("Parse(%q): bad path %q", raw, p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if isSingleDotSegment(seg) || isDoubleDotSegment(seg) {
			t.Fatalf("Parse(%q): dot segment left in path %q", raw, p)
		}
	}
	for i := 0; i < len(p); i++ {
		if p[i] >= 0x80 || p[i] < 0x21 || p[i] == 0x7f {
			t.Fatalf("Parse(%q): unescaped byte in path %q", raw, p)
		}
	}
}

// isPlainHost reports whether h consists of letters, digits, '-', '.' and
// IPv6 punctuation only, the hosts that every parser agrees on.
func isPlainHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-.[]:", c) >= 0) {
			return false
		}
	}
	return true
}

var fuzzPatternSeeds = []string{
	"test.com",
	"*.test.com",
	"test.com:8443",
	"https://test.com/help/",
	"http://*.bücher.example:80/a/../b",
	"127.0.0.1",
	"0x7f.1",
	"[::1]:8080",
	"localhost",
	"intranet:8080/x",
	"co.uk",
	"*.com",
	"ck",
	"ex*ample.com",
	"ftp://test.com",
	"user@test.com",
	"test.com?x",
	"xn--.com",
	"a.xn--",
	"",
}

// FuzzPattern checks that ParsePattern never panics, that errors are
// *PatternError, and that accepted patterns round-trip through String.
func FuzzPattern(f *testing.F) {
	for _, s := range fuzzPatternSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := ParsePattern(raw)
		if err != nil {
			var pe *PatternError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidPattern) || pe.Reason == "" {
				t.Fatalf("ParsePattern(%q): bad error %#v", raw, err)
			}
			if (p != Pattern{}) {
				t.Fatalf("ParsePattern(%q): non-zero Pattern with error", raw)
			}
			return
		}
		s := p.String()
		q, err := ParsePattern(s)
		if err != nil {
			t.Fatalf("ParsePattern(%q).String() = %q, which does not parse: %v", raw, s, err)
		}
		if q != p {
			t.Fatalf("ParsePattern(%q) = %+v, but ParsePattern(%q) = %+v", raw, p, s, q)
		}
		if p.Host() == "" || p.Host() != strings.ToLower(p.Host()) || strings.HasSuffix(p.Host(), ".") {
			t.Fatalf("ParsePattern(%q): bad host %q", raw, p.Host())
		}
		if p.IsIP() && p.IsWildcard() {
			t.Fatalf("ParsePattern(%q): wildcard IP", raw)
		}
		if p.Path() == "/" || p.Path() != "" && !strings.HasPrefix(p.Path(), "/") {
			t.Fatalf("ParsePattern(%q): bad path %q", raw, p.Path())
		}
		if p.Scheme() != "" && p.Scheme() != "http" && p.Scheme() != "https" {
			t.Fatalf("ParsePattern(%q): scheme %q", raw, p.Scheme())
		}
		// A pattern host, with a scheme in front, is itself a URL host.
		// Only a scheme prefix is cut: "://" may also stand in the path
		// ("0.0.0.0/://").
		rest := s
		if p.Scheme() != "" {
			rest = strings.TrimPrefix(s, p.Scheme()+"://")
		}
		u, err := Parse("http://" + rest)
		if err != nil && !p.IsWildcard() {
			t.Fatalf("pattern %q is not a valid URL authority: %v", s, err)
		}
		if err == nil && !p.IsWildcard() && u.Host != p.Host() {
			t.Fatalf("pattern %q has host %q, but as a URL its host is %q", s, p.Host(), u.Host)
		}
		if ambiguousPath(p.Path()) {
			t.Fatalf("pattern %q has a path that can never match", s)
		}
		// A pattern matches the URL made of its own parts.
		own := URL{Scheme: p.Scheme(), Host: p.Host(), Port: p.Port(), Path: p.Path()}
		if own.Scheme == "" {
			own.Scheme = "https"
		}
		if p.IsWildcard() {
			own.Host = "x." + own.Host
		}
		if own.Port == defaultPort(own.Scheme) {
			own.Port = 0
		}
		if own.Path == "" {
			own.Path = "/"
		}
		if u, err := Parse(own.String()); err == nil && !p.Match(u) {
			t.Fatalf("pattern %q does not match %q", s, u.String())
		}
	})
}

// FuzzMatch checks Index.Match against an oracle written without the
// matching code (label lists and path segments), and against a linear scan
// over Pattern.Match. patterns holds up to eight patterns, one per line.
func FuzzMatch(f *testing.F) {
	f.Add("test.com", "https://test.com.evil.net/")
	f.Add("test.com\n*.test.com", "https://a.test.com/")
	f.Add("*.test.com", "https://test.com/")
	f.Add("test.com/help", "https://test.com/helpdesk")
	f.Add("test.com/help/", "https://test.com/help")
	f.Add("test.com/help\ntest.com", "https://test.com/help/../admin")
	f.Add("https://test.com:8443", "https://test.com:8443/x")
	f.Add("test.com:443", "https://test.com/")
	f.Add("127.0.0.1", "http://0x7f.1/")
	f.Add("[::1]", "http://[0:0::1]/")
	f.Add("bücher.example", "https://xn--bcher-kva.example/")
	f.Add("localhost\nintranet:8080/x", "http://intranet:8080/x/y")
	f.Add("a.b.c\nb.c\nc.d", "http://x.a.b.c/")
	f.Add("example.com\n*.example.com/a/\nhttp://x.example.com:80/a", "x.example.com/a/b")
	f.Add("test.com/help", "https://test.com/help/%C0%AE%C0%AE/admin")
	f.Add("test.com/help", "https://test.com/help/%e0%80%ae%e0%80%ae/admin")
	f.Fuzz(func(t *testing.T, patterns, raw string) {
		u, err := Parse(raw)
		if err != nil {
			// Give host-like input a scheme, so that more inputs reach
			// the matcher.
			if u, err = Parse("https://" + raw); err != nil {
				return
			}
		}
		var entries []Entry
		for i, line := range strings.Split(patterns, "\n") {
			if i == 8 {
				break
			}
			p, err := ParsePattern(line)
			if err != nil {
				continue
			}
			entries = append(entries, Entry{ID: strconv.Itoa(i), Pattern: p})
			if got, want := p.Match(u), oracleMatch(p, u); got != want {
				t.Fatalf("pattern %q, URL %q: Match = %v, oracle says %v", p.String(), u.String(), got, want)
			}
		}
		ix := NewIndex(entries)
		id, ok := ix.Match(u)
		lid, lok := linearBest(entries, u)
		if id != lid || ok != lok {
			t.Fatalf("URL %q: Index.Match = %q %v, linear scan = %q %v", u.String(), id, ok, lid, lok)
		}
		if !ok {
			return
		}
		for _, e := range entries {
			if e.ID == id && !oracleMatch(e.Pattern, u) {
				t.Fatalf("URL %q allowed by %q, which the oracle rejects", u.String(), e.Pattern.String())
			}
		}
	})
}

// oracleMatch decides whether pattern p allows u using only the pattern's
// accessors, label lists and path segments.
func oracleMatch(p Pattern, u URL) bool {
	if p.Host() == "" {
		return false
	}
	if p.Scheme() != "" && p.Scheme() != u.Scheme {
		return false
	}
	// Host: compare label lists from the right.
	if p.IsIP() {
		if u.Host != p.Host() {
			return false
		}
	} else {
		if u.IsIP() {
			return false
		}
		ul, pl := strings.Split(u.Host, "."), strings.Split(p.Host(), ".")
		if len(ul) < len(pl) || p.IsWildcard() && len(ul) == len(pl) {
			return false
		}
		for i := 1; i <= len(pl); i++ {
			if ul[len(ul)-i] != pl[len(pl)-i] {
				return false
			}
		}
		if !strings.HasSuffix(u.Host, "."+p.Host()) && (p.IsWildcard() || u.Host != p.Host()) {
			return false
		}
	}
	// Port: the effective port, computed independently.
	if p.Port() != 0 {
		port := u.Port
		if port == 0 {
			port = map[string]uint16{"http": 80, "https": 443}[u.Scheme]
		}
		if port != p.Port() {
			return false
		}
	}
	// Path: segment-wise prefix.
	if p.Path() == "" {
		return true
	}
	lower := strings.ToLower(u.Path)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return false
	}
	// Overlong UTF-8 may be decoded to "/" or "." by a server.
	if strings.Contains(lower, "%c0") || strings.Contains(lower, "%c1") || strings.Contains(lower, "%e0%8") || strings.Contains(lower, "%e0%9") {
		return false
	}
	useg := strings.Split(u.Path, "/")
	for _, s := range useg {
		if before, _, found := strings.Cut(s, ";"); found {
			if b := strings.ToLower(before); b == "." || b == ".." || b == "%2e" || b == ".%2e" || b == "%2e." || b == "%2e%2e" {
				return false
			}
		}
	}
	pseg := strings.Split(p.Path(), "/")
	if pseg[len(pseg)-1] == "" {
		// "/help/": every segment, including the empty last one, must be a
		// prefix segment, and the URL must have at least one more segment.
		pseg = pseg[:len(pseg)-1]
		if len(useg) <= len(pseg) {
			return false
		}
	} else if len(useg) < len(pseg) {
		return false
	}
	for i := range pseg {
		if useg[i] != pseg[i] {
			return false
		}
	}
	return true
}
