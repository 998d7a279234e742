package urlmatch

import (
	"cmp"
	"slices"
	"strings"
)

// Entry is one allowlist entry: an identifier chosen by the caller and the
// pattern that the entry allows.
type Entry struct {
	// ID identifies the entry in Index.Match results.
	ID string
	// Pattern is what the entry allows; the zero Pattern allows nothing.
	Pattern Pattern
}

// Index finds the allowlist entry that allows a URL. It is keyed by pattern
// host, so a lookup costs one map probe per label of the URL host, plus one
// Pattern.Match per entry sharing a probed host, however many entries there
// are in total. An Index is immutable after NewIndex returns and
// is safe for concurrent use by any number of goroutines.
type Index struct {
	byHost map[string][]Entry
	n      int
	// labels has bit k set when some key has k labels (bit 63: 63 or
	// more), so that Match probes only host suffixes that can be keys.
	labels uint64
}

// labelBit returns the bit of LabelMask for a host with n labels.
func labelBit(n int) uint64 { return 1 << min(n, 63) }

// LabelMask returns a mask with bit k set for every host in hosts that
// has k labels (bit 63: 63 or more). A lookup of a host suffix with k
// labels can only hit when bit k is set.
func LabelMask(hosts ...string) uint64 {
	var m uint64
	for _, h := range hosts {
		m |= labelBit(strings.Count(h, ".") + 1)
	}
	return m
}

// HasLabels reports whether mask (from LabelMask) has a host with n
// labels.
func HasLabels(mask uint64, n int) bool { return mask&labelBit(n) != 0 }

// NewIndex builds an Index over entries. Entries whose Pattern is the zero
// Pattern are ignored. The slice is not retained.
func NewIndex(entries []Entry) *Index {
	ix := &Index{byHost: make(map[string][]Entry)}
	for _, e := range entries {
		if e.Pattern.host == "" {
			continue
		}
		ix.byHost[e.Pattern.host] = append(ix.byHost[e.Pattern.host], e)
		ix.labels |= LabelMask(e.Pattern.host)
		ix.n++
	}
	for _, bucket := range ix.byHost {
		// All entries of a bucket have the same host length, so the first
		// one that matches is the most specific: longest path first, then
		// smallest ID.
		slices.SortStableFunc(bucket, func(a, b Entry) int {
			if c := cmp.Compare(len(b.Pattern.path), len(a.Pattern.path)); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
	return ix
}

// Len returns the number of entries in the index.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return ix.n
}

// Match returns the ID of the most specific entry whose pattern matches u:
// the one with the longest host, then the longest path, then the smallest
// ID. The result is the same as checking every entry with Pattern.Match and
// applying that order. Match walks the host's labels from the right and does
// not allocate. A nil Index matches nothing.
func (ix *Index) Match(u URL) (id string, ok bool) {
	if ix == nil || ix.n == 0 || u.Host == "" {
		return "", false
	}
	h := u.Host
	if isIPHost(h) {
		// IP patterns match exactly; there are no parent hosts to visit.
		if e := firstMatch(ix.byHost[h], u); e != nil {
			return e.ID, true
		}
		return "", false
	}
	// Visit "com", "example.com", "www.example.com", ...: each later key is
	// longer, so a later match replaces an earlier one.
	var best *Entry
	end := len(h)
	for labels := 1; ; labels++ {
		dot := strings.LastIndexByte(h[:end], '.')
		if HasLabels(ix.labels, labels) {
			if bucket, found := ix.byHost[h[dot+1:]]; found {
				if e := firstMatch(bucket, u); e != nil {
					best = e
				}
			}
		}
		if dot < 0 {
			break
		}
		end = dot
	}
	if best == nil {
		return "", false
	}
	return best.ID, true
}

func firstMatch(bucket []Entry, u URL) *Entry {
	for i := range bucket {
		if bucket[i].Pattern.Match(u) {
			return &bucket[i]
		}
	}
	return nil
}
