package urlmatch

import (
	"errors"
	"testing"
)

// Outcomes of allowlistDecision other than the ID of the allowing entry.
const (
	outNotAllowlisted = "not_allowlisted"
	outInvalid        = "invalid"
	outNotPermitted   = "not_permitted"
)

// allowlistDecision parses raw and matches it against an index built from
// patterns, using each pattern's text as the entry ID.
func allowlistDecision(t *testing.T, patterns []string, raw string) string {
	t.Helper()
	entries := make([]Entry, 0, len(patterns))
	for _, s := range patterns {
		p, err := ParsePattern(s)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", s, err)
		}
		entries = append(entries, Entry{ID: s, Pattern: p})
	}
	ix := NewIndex(entries)
	u, err := Parse(raw)
	switch {
	case errors.Is(err, ErrNotPermitted):
		return outNotPermitted
	case errors.Is(err, ErrInvalid):
		return outInvalid
	case err != nil:
		t.Fatalf("Parse(%q) returned an error that is neither ErrInvalid nor ErrNotPermitted: %v", raw, err)
	}
	id, ok := ix.Match(u)
	if !ok {
		return outNotAllowlisted
	}
	// The index must agree with checking the winning pattern directly.
	for _, e := range entries {
		if e.ID == id && !e.Pattern.Match(u) {
			t.Fatalf("Index.Match(%q) returned %q, whose pattern does not match", raw, id)
		}
	}
	return id
}

func TestHostileURLs(t *testing.T) {
	test := []string{"test.com"}
	help := []string{"test.com/help"}
	helpSlash := []string{"test.com/help/"}
	buecher := []string{"bücher.example"}
	loop4 := []string{"127.0.0.1"}
	loop6 := []string{"[::1]"}
	port := []string{"test.com:8443"}
	httpsOnly := []string{"https://test.com"}
	wild := []string{"*.test.com"}

	cases := []struct {
		patterns []string
		url      string
		want     string
	}{
		// Suffix and substring tricks.
		{test, "https://test.com/", "test.com"},
		{test, "https://test.com.evil.net/", outNotAllowlisted},
		{test, "https://test.com.evil.net:443/test.com", outNotAllowlisted},
		{test, "https://eviltest.com/", outNotAllowlisted},
		{test, "https://evil-test.com/", outNotAllowlisted},
		{test, "https://xtest.com/", outNotAllowlisted},
		{test, "https://test.comm/", outNotAllowlisted},
		{test, "https://testcom/", outNotAllowlisted},
		{test, "https://test.co/", outNotAllowlisted},
		{test, "https://evil.net#test.com", outNotAllowlisted},
		{test, "https://evil.net?test.com", outNotAllowlisted},
		{test, "https://evil.net/test.com", outNotAllowlisted},
		{test, "https://evil.net/?next=https://test.com/", outNotAllowlisted},
		{test, "https://sub.test.com/", "test.com"},
		{test, "https://a.b.test.com/x", "test.com"},
		{test, "https://test.com.evil.net.test.com/", "test.com"},

		// Userinfo is never the host.
		{test, "https://test.com@evil.net/", outNotAllowlisted},
		{test, "https://test.com:pw@evil.net/", outNotAllowlisted},
		{test, "https://test.com@evil.net@x.org/", outNotAllowlisted},
		{test, "https://evil.net@test.com/", "test.com"},
		{test, "https://a@b@test.com/", "test.com"},
		{test, "https://user:pass@test.com:443/", "test.com"},
		{test, "http://@test.com/", "test.com"},
		{test, "https://test.com%40evil.net/", outInvalid},
		{test, "https://test.com:pw@/", outInvalid},

		// Backslashes are slashes in http(s) URLs.
		{test, `https://evil.net\@test.com`, outNotAllowlisted},
		{test, `https://test.com\@evil.net`, "test.com"},
		{test, `https://evil.net\test.com`, outNotAllowlisted},
		{test, `https:\\test.com\`, "test.com"},
		{test, `https:\\evil.net\test.com`, outNotAllowlisted},
		{test, `https:/\test.com`, "test.com"},
		{test, `https:\/test.com/`, "test.com"},

		// Tab, newline and carriage return are removed anywhere.
		{test, "https://te\tst.com/", "test.com"},
		{test, "https://test.c\nom/", "test.com"},
		{test, "ht\ttps://test.com/", "test.com"},
		{test, "https://test.com\r.evil.net/", outNotAllowlisted},
		{test, "https://test.com\t@evil.net/", outNotAllowlisted},

		// Leading and trailing C0 control or space are trimmed; inside, they fail.
		{test, "  https://test.com/  ", "test.com"},
		{test, "\x00https://test.com/\x1f", "test.com"},
		{test, "\x7fhttps://test.com/", outInvalid},
		{test, "https://test.com /", outInvalid},
		{test, "https:// test.com/", outInvalid},
		{test, "https://test.com\x00.evil.net/", outInvalid},

		// Percent-encoded hosts are decoded before anything else.
		{test, "https://%74est.com/", "test.com"},
		{test, "https://test%2ecom/", "test.com"},
		{test, "https://test%2Ecom.evil.net/", outNotAllowlisted},
		{test, "https://test.com%2eevil.net/", outNotAllowlisted},
		{test, "https://test.com%2F.evil.net/", outInvalid},
		{test, "https://test.com%00/", outInvalid},
		{test, "https://%zztest.com/", outInvalid},
		{test, "https://test.com%3A443/", outInvalid},

		// Case and trailing dots.
		{test, "HTTPS://TEST.COM/", "test.com"},
		{test, "https://TeSt.CoM./", "test.com"},
		{test, "https://test.com../", outInvalid},
		{test, "https://.test.com/", outInvalid},
		{test, "https://test..com/", outInvalid},
		{[]string{"TEST.COM."}, "https://test.com/", "TEST.COM."},

		// IDNA, punycode, homoglyphs.
		{buecher, "https://xn--bcher-kva.example/", "bücher.example"},
		{[]string{"xn--bcher-kva.example"}, "https://bücher.example/", "xn--bcher-kva.example"},
		{buecher, "https://BÜCHER.example/", "bücher.example"},
		{buecher, "https://%C3%BCbung.b%C3%BCcher.example/", "bücher.example"},
		{buecher, "https://bucher.example/", outNotAllowlisted},
		{test, "https://test。com/", "test.com"},
		{test, "https://test．com/", "test.com"},
		{test, "https://test｡com/", "test.com"},
		{test, "https://ｔｅｓｔ.com/", "test.com"},
		{test, "https://test.com\u00ad/", "test.com"},
		{test, "https://tеst.com/", outNotAllowlisted}, // Cyrillic е
		{test, "https://test.cοm/", outNotAllowlisted}, // Greek ο
		{test, "https://xn--tst-rdd.com/", outNotAllowlisted},
		{test, "https://ß.test.com/", "test.com"},
		{test, "https://xn--.test.com/", outInvalid},
		{test, "https://xn--a.test.com/", outInvalid},
		{test, "https://a\u200db.test.com/", outInvalid},
		{test, "https://test.com%ff/", outInvalid},
		{test, "https://test.com／evil.net/", outInvalid}, // fullwidth solidus maps to '/'

		// IPv4 number forms.
		{loop4, "http://127.0.0.1/", "127.0.0.1"},
		{loop4, "http://0x7f.1/", "127.0.0.1"},
		{loop4, "http://2130706433/", "127.0.0.1"},
		{loop4, "http://0177.0.0.1/", "127.0.0.1"},
		{loop4, "http://127.1/", "127.0.0.1"},
		{loop4, "http://127.0.0.1./", "127.0.0.1"},
		{loop4, "http://0x7F000001/", "127.0.0.1"},
		{loop4, "http://127.0.0.01/", "127.0.0.1"},
		{loop4, "http://%31%32%37.0.0.1/", "127.0.0.1"},
		{loop4, "http://１２７.０.０.１/", "127.0.0.1"},
		{loop4, "http://127.0.0.2/", outNotAllowlisted},
		{loop4, "http://127.0.0.1.evil.net/", outNotAllowlisted},
		{loop4, "http://[::ffff:127.0.0.1]/", outNotAllowlisted},
		{loop4, "http://evil.127.0.0.1/", outInvalid},
		{loop4, "http://1.2.3.4.5/", outInvalid},
		{loop4, "http://127.0.0.256/", outInvalid},
		{loop4, "http://127.0.0.08/", outInvalid},
		{loop4, "http://4294967296/", outInvalid},
		{[]string{"0x7f.1"}, "http://127.0.0.1:8080/", "0x7f.1"},

		// IPv6 literals.
		{loop6, "http://[::1]/", "[::1]"},
		{loop6, "http://[0:0::1]/", "[::1]"},
		{loop6, "http://[0000:0000:0000:0000:0000:0000:0000:0001]:80/", "[::1]"},
		{loop6, "http://[::2]/", outNotAllowlisted},
		{loop6, "http://[::1]]/", outInvalid},
		{loop6, "http://[[::1]]/", outInvalid},
		{loop6, "http://[::1/", outInvalid},
		{loop6, "http://[::1%25eth0]/", outInvalid},
		{loop6, "http://[::1].evil.net/", outInvalid},
		{loop6, "http://[::1::]/", outInvalid},

		// Ports.
		{[]string{"test.com:443"}, "https://test.com:443/", "test.com:443"},
		{httpsOnly, "https://test.com:443/", "https://test.com"},
		{port, "https://test.com:8443/", "test.com:8443"},
		{port, "http://test.com:8443/", "test.com:8443"},
		{port, "https://test.com:08443/", "test.com:8443"},
		{port, "https://test.com/", outNotAllowlisted},
		{port, "https://test.com:8444/", outNotAllowlisted},
		{[]string{"test.com:80"}, "http://test.com:80/", "test.com:80"},
		{[]string{"test.com:80"}, "https://test.com:80/", "test.com:80"},
		{[]string{"test.com:80"}, "https://test.com/", outNotAllowlisted},
		{httpsOnly, "http://test.com:443/", outNotAllowlisted},
		{test, "https://test.com:/", "test.com"},
		{test, "https://test.com:65536/", outInvalid},
		{test, "https://test.com:-1/", outInvalid},
		{test, "https://test.com:0/", outInvalid},
		{test, "https://test.com:443:443/", outInvalid},
		{test, "https://test.com:8443.evil.net/", outInvalid},

		// Path prefixes and dot segments.
		{help, "https://test.com/help", "test.com/help"},
		{help, "https://test.com/help/", "test.com/help"},
		{help, "https://test.com/help/x/../y", "test.com/help"},
		{help, "https://test.com/a/../help", "test.com/help"},
		{help, "https://test.com/help?x=/../admin", "test.com/help"},
		{help, "https://test.com/help#/../admin", "test.com/help"},
		{help, "https://test.com/helpdesk", outNotAllowlisted},
		{help, "https://test.com/HELP", outNotAllowlisted},
		{help, "https://test.com/help/../admin", outNotAllowlisted},
		{help, "https://test.com/help/%2e%2e/admin", outNotAllowlisted},
		{help, "https://test.com/help/%2E%2e/admin", outNotAllowlisted},
		{help, "https://test.com/help/.%2e/admin", outNotAllowlisted},
		{help, `https://test.com/help\..\admin`, outNotAllowlisted},
		{help, "https://test.com/help/..%2fadmin", outNotAllowlisted},
		{help, "https://test.com/help/..%5Cadmin", outNotAllowlisted},
		{help, "https://test.com/help/..;/admin", outNotAllowlisted},
		{help, "https://test.com/help%2f../admin", outNotAllowlisted},
		{helpSlash, "https://test.com/help/x", "test.com/help/"},
		{helpSlash, "https://test.com/help", outNotAllowlisted},

		// Schemes.
		{test, "javascript:alert('test.com')", outNotPermitted},
		{test, "jAvAsCrIpT:alert(1)", outNotPermitted},
		{test, "java\tscript:alert(1)", outNotPermitted},
		{test, " javascript:alert(1)", outNotPermitted},
		{test, "data:text/html,test.com", outNotPermitted},
		{test, "file:///test.com", outNotPermitted},
		{test, "blob:https://test.com/0f3e", outNotPermitted},
		{test, "about:blank", outNotPermitted},
		{test, "view-source:https://test.com/", outNotPermitted},
		{test, "ftp://test.com/", outNotPermitted},
		{test, "ws://test.com/", outNotPermitted},
		{test, "wss://test.com/", outNotPermitted},
		{test, "mailto:x@test.com", outNotPermitted},
		{[]string{"localhost"}, "localhost:8080", outNotPermitted},
		{test, "http:test.com", "test.com"},
		{test, "//test.com", outInvalid},
		{test, "test.com", outInvalid},
		{test, "test.com/x", outInvalid},
		{test, "", outInvalid},
		{test, "http://", outInvalid},
		{test, "https:///", outInvalid},
		{test, "1http://test.com/", outInvalid},
		{test, "https//test.com/", outInvalid},
		{test, "ht tp://test.com/", outInvalid},

		// Wildcards.
		{wild, "https://test.com/", outNotAllowlisted},
		{wild, "https://a.test.com/", "*.test.com"},
		{wild, "https://a.b.test.com/", "*.test.com"},
		{wild, "https://atest.com/", outNotAllowlisted},

		// Intranet names.
		{[]string{"localhost"}, "http://localhost:3000/", "localhost"},
		{[]string{"intranet:8080/x"}, "http://intranet:8080/x/y", "intranet:8080/x"},
		{[]string{"intranet:8080/x"}, "http://intranet/x", outNotAllowlisted},

		// The most specific entry wins.
		{[]string{"test.com", "sub.test.com"}, "https://x.sub.test.com/", "sub.test.com"},
		{[]string{"test.com", "test.com/help"}, "https://test.com/help/x", "test.com/help"},
		{[]string{"test.com/help", "test.com"}, "https://test.com/other", "test.com"},
		{[]string{"*.test.com", "a.test.com:8443"}, "https://a.test.com/", "*.test.com"},
	}
	if len(cases) < 100 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		if got := allowlistDecision(t, c.patterns, c.url); got != c.want {
			t.Errorf("patterns %q, URL %q: got %s, want %s", c.patterns, c.url, got, c.want)
		}
	}
}
