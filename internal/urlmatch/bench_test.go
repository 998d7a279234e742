package urlmatch

import (
	"fmt"
	"testing"
)

// benchIndex builds an index of n entries: n-3 synthetic customer domains
// plus three realistic ones that the benchmark URLs hit.
func benchIndex(b *testing.B, n int) *Index {
	entries := make([]Entry, 0, n)
	for _, s := range []string{"example.com", "docs.example.com/help/", "*.intranet.corp:8443"} {
		p, err := ParsePattern(s)
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, Entry{ID: s, Pattern: p})
	}
	for i := len(entries); i < n; i++ {
		s := fmt.Sprintf("tenant%06d.example%03d.org", i, i%997)
		if i%3 == 0 {
			s = "*." + s
		}
		if i%5 == 0 {
			s += "/app"
		}
		p, err := ParsePattern(s)
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, Entry{ID: fmt.Sprintf("e%d", i), Pattern: p})
	}
	return NewIndex(entries)
}

func BenchmarkIndexMatch(b *testing.B) {
	urls := []struct{ name, raw string }{
		{"hit-exact", "https://example.com/"},
		{"hit-deep", "https://a.b.c.docs.example.com/help/page"},
		{"hit-wildcard", "https://wiki.intranet.corp:8443/x"},
		{"miss", "https://test.com.evil.net/login"},
		{"miss-ip", "http://127.0.0.1/"},
	}
	for _, size := range []int{10, 100_000} {
		ix := benchIndex(b, size)
		for _, c := range urls {
			u, err := Parse(c.raw)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("entries=%d/%s", size, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					ix.Match(u)
				}
			})
		}
	}
}

func BenchmarkParse(b *testing.B) {
	for _, raw := range []string{
		"https://docs.example.com/help/page?x=1#top",
		"https://bücher.example/a/../b",
		"http://0x7f.1:8080/",
	} {
		b.Run(raw, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
