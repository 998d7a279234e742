package policy

import (
	"math/rand/v2"
	"testing"
)

// looseAlphabet spells every byte class isLoose tells apart.
const looseAlphabet = "/.aA;%2f\\\xc3\xa9z"

// TestLoosen_ShortcutIsExact: loosen's one-pass shortcut answers exactly
// what the full loosening does, for every path up to 5 bytes (4 under the race detector) over the
// alphabet and for random longer ones; whenever it takes the shortcut the
// full loosening would have returned the path unchanged.
func TestLoosen_ShortcutIsExact(t *testing.T) {
	t.Parallel()
	check := func(p string) {
		for _, keep := range []bool{false, true} {
			if got, want := loosen(p, keep), loosenFull(p, keep); got != want {
				t.Fatalf("loosen(%q, %v) = %q, full loosening %q", p, keep, got, want)
			}
		}
		if isLoose(p) && loosenFull(p, false) != p {
			t.Fatalf("isLoose(%q) but the full loosening is %q", p, loosenFull(p, false))
		}
	}
	var walk func(prefix string, n int)
	walk = func(prefix string, n int) {
		check(prefix)
		if n == 0 {
			return
		}
		for i := range len(looseAlphabet) {
			walk(prefix+looseAlphabet[i:i+1], n-1)
		}
	}
	depth := 5
	if raceEnabled {
		depth = 4
	}
	walk("", depth)
	r := rand.New(rand.NewPCG(3, 7))
	for range 20000 {
		b := make([]byte, 1+r.IntN(40))
		for i := range b {
			b[i] = looseAlphabet[r.IntN(len(looseAlphabet))]
		}
		check(string(b))
	}
	for _, p := range []string{"/", "/checkout", "/checkout/step2", "/a/b/c.html", "/.well-known/x", "/a..b/c", "/..a", "/a.", "/a/"} {
		check(p)
	}
	// The common page paths take the shortcut.
	for _, p := range []string{"/", "/checkout", "/checkout/step2", "/a/b/c.html", "/.well-known/x", "/a..b/c"} {
		if !isLoose(p) {
			t.Errorf("isLoose(%q) = false", p)
		}
	}
}

// FuzzLoosenShortcut: the shortcut never changes the loose spelling.
func FuzzLoosenShortcut(f *testing.F) {
	for _, s := range []string{"/", "/a/./b", "/A", "/a//b", "/a/", "/%2e%2e/", "/a;x/b", "/\xc0\xaf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		for _, keep := range []bool{false, true} {
			if got, want := loosen(p, keep), loosenFull(p, keep); got != want {
				t.Fatalf("loosen(%q, %v) = %q, full loosening %q", p, keep, got, want)
			}
		}
	})
}
