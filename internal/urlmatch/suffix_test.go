package urlmatch

import (
	"strings"
	"testing"

	"golang.org/x/net/publicsuffix"
)

func TestPublicSuffixBelow(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"amazonaws.com", true},           // s3.amazonaws.com and many more (private section)
		{"us-east-1.amazonaws.com", true}, // s3.us-east-1.amazonaws.com …
		{"github.io", false},              // itself a suffix, nothing under it
		{"blogspot.com", false},
		{"com", true},         // co.com, …
		{"uk", true},          // co.uk (ICANN section)
		{"kawasaki.jp", true}, // *.kawasaki.jp (wildcard rule)
		{"ck", true},          // *.ck
		{"city.kawasaki.jp", false},
		{"example.com", false},
		{"shop.example.com", false},
		{"localhost", false},
		{"corp", false},
	} {
		s, got := PublicSuffixBelow(tc.host)
		if got != tc.want {
			t.Errorf("PublicSuffixBelow(%q) = %q, %v; want %v", tc.host, s, got, tc.want)
			continue
		}
		if !got {
			continue
		}
		if !strings.HasSuffix(s, "."+tc.host) {
			t.Errorf("PublicSuffixBelow(%q) names %q, which is not under it", tc.host, s)
		}
		// The example is a public suffix by x/net's list as well: a
		// name directly under it is its own registrable domain's parent.
		probe := strings.Replace(s, "*", "x", 1)
		if ps, _ := publicsuffix.PublicSuffix("y." + probe); ps != probe && !strings.HasSuffix(ps, "."+probe) {
			t.Logf("%q: x/net's list disagrees (%q); the lists differ in age", probe, ps)
		}
	}
}
