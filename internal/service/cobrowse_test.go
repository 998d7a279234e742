package service

import (
	"regexp"
	"testing"
)

// TestCobrowseNames: generated names are two short words and four digits,
// a DNS label.
func TestCobrowseNames(t *testing.T) {
	t.Parallel()
	for name, words := range map[string][]string{"adjectives": cobrowseAdjectives, "nouns": cobrowseNouns} {
		seen := map[string]bool{}
		for _, w := range words {
			if seen[w] || !regexp.MustCompile(`^[a-z]{2,8}$`).MatchString(w) {
				t.Errorf("%s: %q is repeated or not a short lower-case word", name, w)
			}
			seen[w] = true
		}
	}
	for range 1000 {
		n := RandomCobrowseName()
		if !IsDNSLabel(n) || !regexp.MustCompile(`^[a-z]+-[a-z]+-[0-9]{4}$`).MatchString(n) {
			t.Fatalf("name %q is not word-word-NNNN or not a DNS label", n)
		}
	}
}
