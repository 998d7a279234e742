package urlmatch

import (
	"errors"
	"strings"
	"testing"
)

func TestParseNormalizes(t *testing.T) {
	cases := []struct{ in, want string }{
		{"http://example.com", "http://example.com/"},
		{"HTTP://EXAMPLE.COM/A/B", "http://example.com/A/B"},
		{"https://example.com:443/", "https://example.com/"},
		{"http://example.com:80/", "http://example.com/"},
		{"http://example.com:443/", "http://example.com:443/"},
		{"https://example.com:0443/", "https://example.com/"},
		{"https://example.com:8443", "https://example.com:8443/"},
		{"http://example.com./", "http://example.com/"},
		{"http://example.com?q#f", "http://example.com/"},
		{"http://example.com/a?b/../c#d", "http://example.com/a"},
		{"http://example.com/a/./b/../c", "http://example.com/a/c"},
		{"http://example.com/a/%2e/b/%2E%2e/c", "http://example.com/a/c"},
		{"http://example.com/a/.%2e", "http://example.com/"},
		{"http://example.com/a/%2e%2e/", "http://example.com/"},
		{"http://example.com/../../..", "http://example.com/"},
		{"http://example.com/a/..b/c.", "http://example.com/a/..b/c."},
		{"http://example.com/a%2eb", "http://example.com/a%2eb"},
		{`http://example.com\a\b`, "http://example.com/a/b"},
		{"http://example.com//a//", "http://example.com//a//"},
		{"http://example.com/ \"<>`{}", "http://example.com/%20%22%3C%3E%60%7B%7D"},
		{"http://example.com/ü", "http://example.com/%C3%BC"},
		{"http://example.com/\x01\x7f", "http://example.com/%01%7F"},
		{"http://example.com/%zz", "http://example.com/%zz"},
		{"http://bücher.example/", "http://xn--bcher-kva.example/"},
		{"http://bücher.example。/", "http://xn--bcher-kva.example/"},
		{"http://b\u00fccher.example%2E/", "http://xn--bcher-kva.example/"},
		{"http://Ⅸ.example/", "http://ix.example/"},
		{"http://a_b.example/", "http://a_b.example/"},
		{"http://-a-.example/", "http://-a-.example/"},
		{"http://0x7f.1/", "http://127.0.0.1/"},
		{"http://0x.0x.0/", "http://0.0.0.0/"},
		{"http://4294967295/", "http://255.255.255.255/"},
		{"http://[::ffff:1.2.3.4]/", "http://[::ffff:102:304]/"},
		{"http://[1:0:0:2:0:0:0:3]/", "http://[1:0:0:2::3]/"},
		{"http://[1:0:0:0:0:0:0:0]/", "http://[1::]/"},
		{"http://[0:0:0:0:0:0:0:0]/", "http://[::]/"},
		{"http://[1:2:3:4:5:6:7:8]/", "http://[1:2:3:4:5:6:7:8]/"},
		{"http://[ABCD::]:8080", "http://[abcd::]:8080/"},
		{"http://localhost", "http://localhost/"},
		{"http://+0/", "http://+0/"},                                       // '+' is not a digit: a domain, not 0.0.0.0
		{"http://20000000000000000000a/", "http://20000000000000000000a/"}, // not a number at all
		{"http://Xn--0ChB0A0A00A00AA/", "http://xn--0chb0a0a00a00aa/"},     // no STD3 rules for IDNs
		{"http://0x/", "http://0.0.0.0/"},
		{"http:///\\\\example.com", "http://example.com/"},
		{"https://user:pa:ss@example.com", "https://example.com/"},
	}
	for _, c := range cases {
		u, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := u.String(); got != c.want {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, got, c.want)
		}
		v, err := Parse(u.String())
		if err != nil || v != u {
			t.Errorf("Parse(%q) is not idempotent: %+v -> %+v, %v", c.in, u, v, err)
		}
	}
}

func TestParseFields(t *testing.T) {
	u, err := Parse("HTTPS://User@Bücher.Example.:8443/a/../b?x#y")
	if err != nil {
		t.Fatal(err)
	}
	want := URL{Scheme: "https", Host: "xn--bcher-kva.example", Port: 8443, Path: "/b"}
	if u != want {
		t.Errorf("got %+v, want %+v", u, want)
	}
	if u.EffectivePort() != 8443 || u.IsIP() {
		t.Errorf("EffectivePort %d IsIP %v", u.EffectivePort(), u.IsIP())
	}
	for raw, port := range map[string]uint16{"http://a/": 80, "https://a/": 443, "http://a:81/": 81} {
		u, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if u.EffectivePort() != port {
			t.Errorf("%q: EffectivePort() = %d, want %d", raw, u.EffectivePort(), port)
		}
	}
	for raw, ip := range map[string]bool{"http://1.2.3.4/": true, "http://[::1]/": true, "http://a.b/": false, "http://1.2.3.b/": false} {
		u, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if u.IsIP() != ip {
			t.Errorf("%q: IsIP() = %v, want %v", raw, u.IsIP(), ip)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		in   string
		kind error
	}{
		{"", ErrInvalid},
		{" \t\n ", ErrInvalid},
		{"example.com", ErrInvalid},
		{"example.com/x", ErrInvalid},
		{"/x", ErrInvalid},
		{"//example.com", ErrInvalid},
		{"?x", ErrInvalid},
		{"http://", ErrInvalid},
		{"http:", ErrInvalid},
		{"https:///", ErrInvalid},
		{"http://?x", ErrInvalid},
		{"http://user@/", ErrInvalid},
		{"http://:80/", ErrInvalid},
		{"http://a:b/", ErrInvalid},
		{"http://a:65536/", ErrInvalid},
		{"http://a:99999999999999999999/", ErrInvalid},
		{"http://a:0/", ErrInvalid},
		{"http://a b/", ErrInvalid},
		{"http://a<b/", ErrInvalid},
		{"http://a^b/", ErrInvalid},
		{"http://a|b/", ErrInvalid},
		{"http://a%25b/", ErrInvalid},
		{"http://a%/", ErrInvalid},
		{"http://a\x7f/", ErrInvalid},
		{"http://[/", ErrInvalid},
		{"http://[]/", ErrInvalid},
		{"http://[::1]x/", ErrInvalid},
		{"http://[[::1]/", ErrInvalid},
		{"http://[::1]]/", ErrInvalid},
		{"http://x[::1]/", ErrInvalid},
		{"http://[1:2:3:4:5:6:7:8:9]/", ErrInvalid},
		{"http://[1::2::3]/", ErrInvalid},
		{"http://[:1]/", ErrInvalid},
		{"http://[1:]/", ErrInvalid},
		{"http://[::1.2.3]/", ErrInvalid},
		{"http://[::1.2.3.04]/", ErrInvalid},
		{"http://[::1.2.3.256]/", ErrInvalid},
		{"http://[1:2:3:4:5:6:7:1.2.3.4]/", ErrInvalid},
		{"http://[12345::]/", ErrInvalid},
		{"http://1.2.3.4.5/", ErrInvalid},
		{"http://a.1/", ErrInvalid},
		{"http://a.0x/", ErrInvalid},
		{"http://a.0x1/", ErrInvalid},
		{"http://1.2.3.09/", ErrInvalid},
		{"http://256.256.256.256/", ErrInvalid},
		{"http://4294967296/", ErrInvalid},
		{"http://0x100000000/", ErrInvalid},
		{"http://" + strings.Repeat("a", 64) + ".com/", ErrInvalid},
		{"http://" + strings.Repeat("a.", 127) + "com/", ErrInvalid},
		{"http://.", ErrInvalid},
		{"http://../", ErrInvalid},
		{"http://xn--/", ErrInvalid},
		{"http://xn--zca.xn--/", ErrInvalid},
		{"http://\u0661\u0662.com/", ErrInvalid}, // Arabic-Indic digits
		{"http://%ff/", ErrInvalid},
		{"http://\ufffd/", ErrInvalid},
		{"http://a.xn--/", ErrInvalid},
		{"http://a.\u00ad/", ErrInvalid},
		{"javascript:x", ErrNotPermitted},
		{"JAVASCRIPT:x", ErrNotPermitted},
		{"blob:http://a/", ErrNotPermitted},
		{"a+b-c.d:x", ErrNotPermitted},
		{"localhost:80", ErrNotPermitted},
		{"httpx://a/", ErrNotPermitted},
		{"http+s://a/", ErrNotPermitted},
	}
	for _, c := range cases {
		u, err := Parse(c.in)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want error", c.in, u.String())
			continue
		}
		if !errors.Is(err, c.kind) {
			t.Errorf("Parse(%q) error %v, want %v", c.in, err, c.kind)
		}
		other := ErrNotPermitted
		if c.kind == ErrNotPermitted {
			other = ErrInvalid
		}
		if errors.Is(err, other) {
			t.Errorf("Parse(%q) error %v matches both sentinels", c.in, err)
		}
		if (u != URL{}) {
			t.Errorf("Parse(%q) returned a non-zero URL with an error", c.in)
		}
	}
}

func TestParseErrorDoesNotEchoInput(t *testing.T) {
	for _, raw := range []string{
		"https://admin:hunter2@:80/",
		"https://admin:hunter2@exa mple.com/",
		"hunter2-scheme:admin",
		"admin:hunter2@example.com",
	} {
		_, err := Parse(raw)
		if err == nil {
			t.Fatalf("Parse(%q) succeeded", raw)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error for %q repeats a secret: %v", raw, err)
		}
	}
}
