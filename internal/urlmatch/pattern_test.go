package urlmatch

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePatternAccepted(t *testing.T) {
	cases := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"  Example.COM.  ", "example.com"},
		{"*.example.com", "*.example.com"},
		{"*.Example.com:8443/help/", "*.example.com:8443/help/"},
		{"example.com/", "example.com"},
		{"example.com/help", "example.com/help"},
		{"example.com/help/", "example.com/help/"},
		{"example.com/a/./b/../help", "example.com/a/help"},
		{"example.com/help/%2e%2E/docs", "example.com/docs"},
		{"example.com/..", "example.com"},
		{"example.com/a b", "example.com/a%20b"},
		{"example.com/ü", "example.com/%C3%BC"},
		{"http://example.com", "http://example.com"},
		{"HTTPS://example.com:443/x", "https://example.com:443/x"},
		{"https://*.example.com", "https://*.example.com"},
		{"example.com:443", "example.com:443"},
		{"example.com:0080", "example.com:80"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"*.bücher.example", "*.xn--bcher-kva.example"},
		{"test。com", "test.com"},
		{"%74est.com", "test.com"},
		{"ß.de", "xn--zca.de"},
		{"under_score.example.com", "under_score.example.com"},
		{"foo.github.io", "foo.github.io"},
		{"example.co.uk", "example.co.uk"},
		{"*.example.co.uk", "*.example.co.uk"},
		{"localhost", "localhost"},
		{"localhost:3000", "localhost:3000"},
		{"intranet", "intranet"},
		{"intranet:8080/x", "intranet:8080/x"},
		{"corp", "corp"},
		{"*.corp", "*.corp"},
		{"wiki.corp", "wiki.corp"},
		{"127.0.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"2130706433:8080", "127.0.0.1:8080"},
		{"10.0.0.1/admin", "10.0.0.1/admin"},
		{"[::1]", "[::1]"},
		{"[0:0::1]:8080", "[::1]:8080"},
		{"[2001:DB8::0:1]", "[2001:db8::1]"},
		{"https://[::1]/x", "https://[::1]/x"},
		{"e\txample.com", "example.com"},
		{"http:8080", "http:8080"}, // a host named "http" on port 8080
	}
	for _, c := range cases {
		p, err := ParsePattern(c.in)
		if err != nil {
			t.Errorf("ParsePattern(%q): unexpected error %v", c.in, err)
			continue
		}
		if got := p.String(); got != c.want {
			t.Errorf("ParsePattern(%q).String() = %q, want %q", c.in, got, c.want)
		}
		q, err := ParsePattern(p.String())
		if err != nil || q != p {
			t.Errorf("ParsePattern(%q) does not round-trip: %+v, %v", p.String(), q, err)
		}
	}
}

func TestParsePatternRejected(t *testing.T) {
	cases := []struct{ in, reason string }{
		{"", "pattern is empty"},
		{"   ", "pattern is empty"},
		{"com", `pattern is a public suffix ("com")`},
		{"COM.", `pattern is a public suffix ("com")`},
		{"co.uk", `pattern is a public suffix ("co.uk")`},
		{"github.io", `pattern is a public suffix ("github.io")`},
		{"*.com", `pattern is a public suffix ("com")`},
		{"*.co.uk", `pattern is a public suffix ("co.uk")`},
		{"*.github.io", `pattern is a public suffix ("github.io")`},
		{"https://co.uk/x", `pattern is a public suffix ("co.uk")`},
		{"com:8080", `pattern is a public suffix ("com")`},
		{"xn--p1ai", `pattern is a public suffix ("xn--p1ai")`},
		{"рф", `pattern is a public suffix ("xn--p1ai")`},
		{"ck", `pattern covers public suffixes ("*.ck")`},
		{"ex*ample.com", "wildcard"},
		{"*example.com", "wildcard"},
		{"a.*.com", "wildcard"},
		{"*", "wildcard"},
		{"*.*.example.com", "wildcard"},
		{"example.*", "wildcard"},
		{"example.com/help/*", "wildcard"},
		{"*.", "pattern has no host"},
		{":8080", "pattern has no host"},
		{"https://", "pattern has no host"},
		{"*.127.0.0.1", "not allowed with an IP address"},
		{"*.[::1]", "not allowed with an IP address"},
		{"*.0x7f.1", "not allowed with an IP address"},
		{"ftp://example.com", `scheme "ftp" is not permitted`},
		{"file:///etc/passwd", `scheme "file" is not permitted`},
		{"ws://example.com", `scheme "ws" is not permitted`},
		{"javascript:alert(1)", `scheme "javascript" is not permitted`},
		{"data:text/html,x", `scheme "data" is not permitted`},
		{"view-source:example.com", `scheme "view-source" is not permitted`},
		{"mailto:x@example.com", "userinfo"},
		{"localhost:abc", "invalid port: port is not a decimal number"},
		{"about:blank", `scheme "about" is not permitted`},
		{"http:example.com", `scheme must be followed by "//"`},
		{"1ttp://example.com", "invalid scheme"},
		{"user@example.com", "userinfo"},
		{"https://user:pw@example.com", "userinfo"},
		{"example.com?x=1", "query"},
		{"example.com/#top", "fragment"},
		{`example.com\admin`, "backslash"},
		{"example.com/a%2Fb", "path must not contain"},
		{"example.com/a/%2e;x/", "path must not contain"},
		{"example.com:", "port is empty"},
		{"example.com:0", "port 0"},
		{"example.com:65536", "port out of range"},
		{"example.com:http", "not a decimal number"},
		{"example.com:80:80", "not a decimal number"},
		{"exa mple.com", "invalid host: forbidden character"},
		{"example.com%2F", "invalid host: forbidden character"},
		{"a..example.com", "invalid host: empty label"},
		{".example.com", "invalid host: empty label"},
		{"xn--.example.com", "invalid host: empty label"},
		{"xn--a.example.com", "invalid host: host is not a valid internationalized domain name"},
		{"foo.1", "invalid host: invalid IPv4 address"},
		{"256.0.0.1", "invalid host: invalid IPv4 address"},
		{"[::1", "invalid host: unterminated IPv6 address"},
		{"[::1]]", "invalid host: unbalanced brackets"},
		{"[::g]", "invalid host: invalid IPv6 address"},
		{"a!b.example.com", `host contains '!'`},
		{"a%2Ab.example.com", `host contains '*'`},
		{strings.Repeat("a", 64) + ".example.com", "invalid host: host label too long"},
	}
	for _, c := range cases {
		p, err := ParsePattern(c.in)
		if err == nil {
			t.Errorf("ParsePattern(%q) = %q, want error containing %q", c.in, p.String(), c.reason)
			continue
		}
		var pe *PatternError
		if !errors.As(err, &pe) {
			t.Errorf("ParsePattern(%q): error %T is not *PatternError", c.in, err)
			continue
		}
		if !errors.Is(err, ErrInvalidPattern) {
			t.Errorf("ParsePattern(%q): error does not match ErrInvalidPattern", c.in)
		}
		if !strings.Contains(pe.Reason, c.reason) {
			t.Errorf("ParsePattern(%q): reason %q does not contain %q", c.in, pe.Reason, c.reason)
		}
		if pe.Reason != strings.ToLower(pe.Reason[:1])+pe.Reason[1:] {
			t.Errorf("ParsePattern(%q): reason %q does not start in lower case", c.in, pe.Reason)
		}
		if (p != Pattern{}) {
			t.Errorf("ParsePattern(%q) returned a non-zero Pattern with an error", c.in)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		pattern, url string
		want         bool
	}{
		{"example.com", "https://example.com/", true},
		{"example.com", "http://example.com:8080/x", true},
		{"example.com", "https://a.b.example.com/", true},
		{"example.com", "https://badexample.com/", false},
		{"example.com", "https://example.com.evil.net/", false},
		{"*.example.com", "https://example.com/", false},
		{"*.example.com", "https://a.example.com/", true},
		{"example.com:8443", "https://example.com:8443/", true},
		{"example.com:8443", "https://example.com/", false},
		{"example.com:443", "https://example.com/", true},
		{"example.com:443", "http://example.com/", false},
		{"http://example.com", "http://example.com/", true},
		{"http://example.com", "https://example.com/", false},
		{"example.com/help", "https://example.com/help", true},
		{"example.com/help", "https://example.com/help/", true},
		{"example.com/help", "https://example.com/help/x", true},
		{"example.com/help", "https://example.com/helpdesk", false},
		{"example.com/help", "https://example.com/", false},
		{"example.com/help/", "https://example.com/help/", true},
		{"example.com/help/", "https://example.com/help/x", true},
		{"example.com/help/", "https://example.com/help", false},
		{"example.com/help", "https://example.com/help/..%2Fadmin", false},
		{"example.com/help", "https://example.com/help/.;/x", false},
		{"example.com/help", "https://example.com/help/%2e;x/y", false},
		{"example.com/help", "https://example.com/help/a;b/c", true},
		{"example.com", "https://example.com/..%2Fadmin", true}, // no path restriction
		{"127.0.0.1", "http://127.0.0.1/", true},
		{"127.0.0.1", "http://127.0.0.10/", false},
		{"0.1", "http://0.0.0.1/", true}, // "0.1" is the IPv4 address 0.0.0.1
		{"[::1]", "http://[::1]:8080/", true},
		{"localhost", "http://app.localhost/", true},
	}
	for _, c := range cases {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", c.pattern, err)
		}
		u, err := Parse(c.url)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.url, err)
		}
		if got := p.Match(u); got != c.want {
			t.Errorf("ParsePattern(%q).Match(%q) = %v, want %v", c.pattern, c.url, got, c.want)
		}
	}
}

func TestZeroPatternMatchesNothing(t *testing.T) {
	var p Pattern
	for _, raw := range []string{"http://a/", "https://example.com/", "http://127.0.0.1/"} {
		u, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if p.Match(u) {
			t.Errorf("zero Pattern matches %q", raw)
		}
	}
	if p.String() != "" {
		t.Errorf("zero Pattern String() = %q", p.String())
	}
	// A hand-built URL with an empty host matches nothing either.
	ok, _ := ParsePattern("example.com")
	if ok.Match(URL{Scheme: "https", Path: "/"}) {
		t.Error("pattern matches URL without host")
	}
}

func TestPatternAccessors(t *testing.T) {
	p, err := ParsePattern("https://*.Example.com:8443/a/")
	if err != nil {
		t.Fatal(err)
	}
	if p.Scheme() != "https" || p.Host() != "example.com" || p.Port() != 8443 ||
		p.Path() != "/a/" || !p.IsWildcard() || p.IsIP() {
		t.Errorf("unexpected accessors: %q %q %d %q %v %v", p.Scheme(), p.Host(), p.Port(), p.Path(), p.IsWildcard(), p.IsIP())
	}
	q, err := ParsePattern("[::1]")
	if err != nil {
		t.Fatal(err)
	}
	if !q.IsIP() || q.IsWildcard() || q.Scheme() != "" || q.Port() != 0 || q.Path() != "" {
		t.Errorf("unexpected accessors for %q", q.String())
	}
}
