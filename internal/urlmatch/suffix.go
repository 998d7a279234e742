package urlmatch

import (
	"strings"
	"sync"

	pslist "github.com/weppos/publicsuffix-go/publicsuffix"
)

// suffixesBelow maps a domain to one public suffix that lies strictly
// under it ("amazonaws.com" → "s3.amazonaws.com"), for every domain that
// has one. Built once, on first use, from every normal and wildcard rule of
// the Public Suffix List, ICANN and private sections alike. A wildcard rule
// "*.ck" puts suffixes under "ck" itself; exception rules ("!www.ck") only
// remove a name from the list and put nothing under anything.
var suffixesBelow = sync.OnceValue(func() map[string]string {
	const (
		normalRule   = 1
		wildcardRule = 2
	)
	m := map[string]string{}
	add := func(domain, suffix string) {
		// Keep the shortest example: the one an admin recognizes.
		if cur, ok := m[domain]; !ok || len(suffix) < len(cur) || len(suffix) == len(cur) && suffix < cur {
			m[domain] = suffix
		}
	}
	for _, r := range pslist.DefaultRules() {
		v := r.Value
		switch r.Type {
		case wildcardRule:
			add(v, "*."+v)
		case normalRule:
		default:
			continue
		}
		example := v
		if r.Type == wildcardRule {
			example = "*." + v
		}
		for i := strings.IndexByte(v, '.'); i >= 0; i = strings.IndexByte(v, '.') {
			v = v[i+1:]
			add(v, example)
		}
	}
	return m
})

// PublicSuffixBelow reports whether a public suffix of the Public Suffix
// List lies strictly under host (a lower-case ASCII domain as Pattern.Host
// returns it), and names one. A pattern for such a host covers sites of
// other owners: "amazonaws.com" covers "attacker.s3.amazonaws.com", because
// "s3.amazonaws.com" is a public suffix. The list is that of
// github.com/weppos/publicsuffix-go, which exposes its rules (x/net's
// publicsuffix answers lookups only).
func PublicSuffixBelow(host string) (string, bool) {
	s, ok := suffixesBelow()[strings.TrimSuffix(host, ".")]
	return s, ok
}
