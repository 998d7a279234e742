package urlmatch

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

func mustPattern(t testing.TB, s string) Pattern {
	t.Helper()
	p, err := ParsePattern(s)
	if err != nil {
		t.Fatalf("ParsePattern(%q): %v", s, err)
	}
	return p
}

func mustParse(t testing.TB, s string) URL {
	t.Helper()
	u, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return u
}

// linearBest is the reference for Index.Match: it checks every entry with
// Pattern.Match and picks the longest host, then the longest path, then the
// smallest ID.
func linearBest(entries []Entry, u URL) (string, bool) {
	var best *Entry
	for i := range entries {
		e := &entries[i]
		if !e.Pattern.Match(u) {
			continue
		}
		if best == nil || better(e, best) {
			best = e
		}
	}
	if best == nil {
		return "", false
	}
	return best.ID, true
}

func better(a, b *Entry) bool {
	if la, lb := len(a.Pattern.Host()), len(b.Pattern.Host()); la != lb {
		return la > lb
	}
	if la, lb := len(a.Pattern.Path()), len(b.Pattern.Path()); la != lb {
		return la > lb
	}
	return a.ID < b.ID
}

func TestIndexMostSpecific(t *testing.T) {
	entries := []Entry{
		{"z-root", mustPattern(t, "example.com")},
		{"a-root", mustPattern(t, "example.com")},
		{"wild", mustPattern(t, "*.example.com")},
		{"docs", mustPattern(t, "docs.example.com")},
		{"docs-api", mustPattern(t, "docs.example.com/api")},
		{"docs-api-v2", mustPattern(t, "docs.example.com/api/v2")},
		{"docs-8443", mustPattern(t, "docs.example.com:8443")},
		{"https-only", mustPattern(t, "https://secure.example.com")},
		{"ip", mustPattern(t, "10.0.0.1")},
		{"ip-path", mustPattern(t, "10.0.0.1/admin")},
		{"v6", mustPattern(t, "[2001:db8::1]")},
		{"local", mustPattern(t, "localhost")},
	}
	ix := NewIndex(entries)
	if ix.Len() != len(entries) {
		t.Fatalf("Len() = %d, want %d", ix.Len(), len(entries))
	}
	cases := []struct{ url, want string }{
		{"https://example.com/", "a-root"},           // tie broken by smallest ID
		{"https://www.example.com/", "a-root"},       // "*.example.com" has the same host length: ID decides
		{"https://docs.example.com/", "docs"},        // longer host wins
		{"https://x.docs.example.com/", "docs"},      // parent of the URL host
		{"https://docs.example.com/api", "docs-api"}, // longer path wins
		{"https://docs.example.com/api/v2/x", "docs-api-v2"},
		{"https://docs.example.com/apiv2", "docs"}, // segment boundary
		{"https://docs.example.com:8443/api", "docs-api"},
		{"https://docs.example.com:8443/", "docs"},    // port-restricted entry ties on path: ID decides
		{"https://secure.example.com/", "https-only"}, // longer host than example.com
		{"http://secure.example.com/", "a-root"},      // scheme restriction fails, fall back to parent
		{"http://10.0.0.1/admin/x", "ip-path"},
		{"http://10.0.0.1/", "ip"},
		{"http://[2001:db8:0::1]:8080/", "v6"},
		{"http://app.localhost/", "local"},
		{"http://example.org/", ""},
		{"http://com/", ""},
		{"http://10.0.0.2/", ""},
		{"http://1.10.0.0.1.example.org/", ""},
	}
	for _, c := range cases {
		u := mustParse(t, c.url)
		id, ok := ix.Match(u)
		if c.want == "" {
			if ok {
				t.Errorf("Match(%q) = %q, want no match", c.url, id)
			}
			continue
		}
		if !ok || id != c.want {
			t.Errorf("Match(%q) = %q, %v; want %q", c.url, id, ok, c.want)
		}
		if lid, _ := linearBest(entries, u); lid != id {
			t.Errorf("Match(%q) = %q, linear scan says %q", c.url, id, lid)
		}
	}
}

func TestIndexEmptyAndNil(t *testing.T) {
	u := mustParse(t, "https://example.com/")
	var nilIx *Index
	if _, ok := nilIx.Match(u); ok || nilIx.Len() != 0 {
		t.Error("nil Index matches or has entries")
	}
	ix := NewIndex(nil)
	if _, ok := ix.Match(u); ok || ix.Len() != 0 {
		t.Error("empty Index matches or has entries")
	}
	ix = NewIndex([]Entry{{ID: "zero"}, {ID: "ok", Pattern: mustPattern(t, "example.com")}})
	if ix.Len() != 1 {
		t.Errorf("zero Pattern was indexed: Len() = %d", ix.Len())
	}
	if id, ok := ix.Match(URL{}); ok {
		t.Errorf("zero URL matched %q", id)
	}
}

// randomEntries builds entries from a small vocabulary so that many of them
// overlap.
func randomEntries(r *rand.Rand, n int) []Entry {
	hosts := []string{"example.com", "a.example.com", "b.a.example.com", "example.org", "x.example.org", "localhost", "127.0.0.1", "[::1]", "xn--bcher-kva.example"}
	paths := []string{"", "/a", "/a/", "/a/b", "/b"}
	ports := []string{"", ":80", ":443", ":8080"}
	schemes := []string{"", "http://", "https://"}
	var entries []Entry
	for len(entries) < n {
		h := hosts[r.IntN(len(hosts))]
		s := schemes[r.IntN(len(schemes))]
		if r.IntN(3) == 0 {
			s += "*."
		}
		raw := s + h + ports[r.IntN(len(ports))] + paths[r.IntN(len(paths))]
		p, err := ParsePattern(raw)
		if err != nil {
			continue // "*." with an IP literal
		}
		entries = append(entries, Entry{ID: fmt.Sprintf("e%02d", r.IntN(100)), Pattern: p})
	}
	return entries
}

func TestIndexAgreesWithLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	urls := []string{}
	for _, s := range []string{"http://", "https://"} {
		for _, h := range []string{"example.com", "a.example.com", "b.a.example.com", "c.b.a.example.com", "example.org", "x.example.org", "y.x.example.org", "localhost", "z.localhost", "127.0.0.1", "[::1]", "bücher.example", "notexample.com", "com"} {
			for _, p := range []string{"", ":80", ":443", ":8080"} {
				for _, path := range []string{"/", "/a", "/a/", "/a/b/c", "/ab", "/b"} {
					urls = append(urls, s+h+p+path)
				}
			}
		}
	}
	for round := 0; round < 50; round++ {
		entries := randomEntries(r, 1+r.IntN(30))
		ix := NewIndex(entries)
		for _, raw := range urls {
			u := mustParse(t, raw)
			id, ok := ix.Match(u)
			lid, lok := linearBest(entries, u)
			if id != lid || ok != lok {
				t.Fatalf("round %d, %q: index %q %v, linear %q %v; entries %v", round, raw, id, ok, lid, lok, entries)
			}
		}
	}
}

func TestIndexMatchDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ix := NewIndex(randomEntries(r, 200))
	for _, raw := range []string{
		"https://b.a.example.com/a/b",
		"https://deep.deep.deep.deep.b.a.example.com/zzz",
		"http://nothing.example.net/",
		"http://127.0.0.1:8080/a",
		"http://[::1]/",
	} {
		u := mustParse(t, raw)
		if allocs := testing.AllocsPerRun(1000, func() { ix.Match(u) }); allocs != 0 {
			t.Errorf("Index.Match(%q) allocates %.1f times", raw, allocs)
		}
		p := mustPattern(t, "example.com/a")
		if allocs := testing.AllocsPerRun(1000, func() { p.Match(u) }); allocs != 0 {
			t.Errorf("Pattern.Match(%q) allocates %.1f times", raw, allocs)
		}
	}
}

func TestIndexConcurrentReaders(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	entries := randomEntries(r, 100)
	ix := NewIndex(entries)
	urls := []URL{
		mustParse(t, "https://b.a.example.com/a/b"),
		mustParse(t, "http://x.example.org:8080/"),
		mustParse(t, "http://[::1]/a"),
	}
	want := make([]string, len(urls))
	for i, u := range urls {
		want[i], _ = linearBest(entries, u)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				k := i % len(urls)
				if id, _ := ix.Match(urls[k]); id != want[k] {
					t.Errorf("concurrent Match = %q, want %q", id, want[k])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestNewIndexDoesNotRetainInput(t *testing.T) {
	entries := []Entry{{ID: "a", Pattern: mustPattern(t, "example.com")}}
	ix := NewIndex(entries)
	entries[0] = Entry{ID: "b", Pattern: mustPattern(t, "example.org")}
	if id, ok := ix.Match(mustParse(t, "https://example.com/")); !ok || id != "a" {
		t.Errorf("index changed with its input slice: %q %v", id, ok)
	}
}
