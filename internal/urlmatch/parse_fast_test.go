package urlmatch

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// checkFastPath fails when parseFast accepts raw and its answer differs
// from the full parser's.
func checkFastPath(t *testing.T, raw string) bool {
	t.Helper()
	fast, ok := parseFast(raw)
	if !ok {
		return false
	}
	full, err := parseFull(raw)
	if err != nil || fast != full {
		t.Fatalf("parseFast(%q) = %+v, full parser = %+v, %v", raw, fast, full, err)
	}
	return true
}

// TestParseFast_AgreesWithFullParser runs parseFast against the full
// parser on the fuzz seeds, the hostile-URL corpus and random mutations of
// ordinary URLs (bytes that make the fast path bail out are mixed in on
// purpose).
func TestParseFast_AgreesWithFullParser(t *testing.T) {
	t.Parallel()
	base := []string{
		"https://www.example.com/", "http://example.com", "https://a.b.example.co.uk:8443/x/y?q=1#f",
		"https://shop.example.com/checkout/step-2?session=1", "http://a-b.c/", "https://x.y/a//b/",
		"https://example.com:443/", "http://example.com:80/", "http://example.com:/", "https://example.com?x",
		"https://example.com#x", "https://example.com/a/b/", "https://e.com/%41%2e/b", "https://e.com/.x/..y/%2ex",
	}
	inputs := append(append([]string{}, fuzzURLSeeds...), base...)
	alphabet := "abcxz09-._:/?#\\%@[] \t\nAXn2eE"
	rng := rand.New(rand.NewPCG(7, 11))
	for range 200_000 {
		b := []byte(base[rng.IntN(len(base))])
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(b) + 1)
			switch rng.IntN(3) {
			case 0:
				b = append(b[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[i:]...)...)
			case 1:
				if i < len(b) {
					b = append(b[:i], b[i+1:]...)
				}
			default:
				if i < len(b) {
					b[i] = alphabet[rng.IntN(len(alphabet))]
				}
			}
		}
		inputs = append(inputs, string(b))
	}
	inputs = append(inputs, "http://"+strings.Repeat("a.", 126)+"bc/", "http://"+strings.Repeat("a", 63)+".com/",
		"http://"+strings.Repeat("a", 64)+".com/", "http://xn--bcher-kva.example/", "http://a.xn--/", "http://a.b1/", "http://a.0x1/",
		"http://a.com:65535/", "http://a.com:65536/", "http://a.com:0/", "http://a.com:8080x/")
	fast := 0
	for _, raw := range inputs {
		if checkFastPath(t, raw) {
			fast++
		}
	}
	t.Logf("fast path: %d of %d inputs", fast, len(inputs))
	if fast < len(inputs)/10 {
		t.Fatalf("the fast path took only %d of %d inputs", fast, len(inputs))
	}
}

// TestCleanPath_IsNormalized checks that every path cleanPath lets
// through unchanged is what the full path normalization returns.
func TestCleanPath_IsNormalized(t *testing.T) {
	t.Parallel()
	alphabet := "ab/.%2eE\\ ;~#?\x00\xff"
	rng := rand.New(rand.NewPCG(3, 5))
	clean := 0
	for range 300_000 {
		b := []byte{'/'}
		for range rng.IntN(12) {
			b = append(b, alphabet[rng.IntN(len(alphabet))])
		}
		p := string(b)
		if !cleanPath(p) {
			continue
		}
		clean++
		if got := normalizePathFull(p); got != p {
			t.Fatalf("cleanPath(%q) but normalized to %q", p, got)
		}
	}
	if clean < 1000 {
		t.Fatalf("only %d clean paths generated", clean)
	}
}

func FuzzParseFast(f *testing.F) {
	for _, s := range fuzzURLSeeds {
		f.Add(s)
	}
	f.Add("https://shop.example.com/checkout/step-2?session=1")
	f.Fuzz(func(t *testing.T, raw string) {
		checkFastPath(t, raw)
		if cleanPath(raw) && normalizePathFull(raw) != raw {
			t.Fatalf("cleanPath(%q) but normalized to %q", raw, normalizePathFull(raw))
		}
	})
}
