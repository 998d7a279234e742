// Compaction: a driver that forgets old changes says so with ErrCompacted,
// and keeps every value.

package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// testCompaction compacts the change history of a store.Compactor and
// checks that Changes before the compaction point is ErrCompacted (the
// "reload everything" answer), after it still works, and that no value is
// lost.
func testCompaction(t *testing.T, s store.Store) {
	c, ok := s.(store.Compactor)
	if !ok {
		t.Skip("the driver does not implement store.Compactor")
	}
	var revs []uint64
	for _, v := range []string{"1", "2", "3", "4", "5"} {
		revs = append(revs, MustPut(t, s, "c/"+v, v, "c/last", v))
	}
	at := revs[2]
	if err := c.Compact(context.Background(), at); err != nil {
		t.Fatalf("Compact(%d): %v", at, err)
	}
	for _, after := range []uint64{0, revs[0], revs[1], at - 1} {
		if cs, err := Changes(t, s, after); !errors.Is(err, store.ErrCompacted) {
			t.Errorf("Changes(%d) after Compact(%d) = %+v, %v; want ErrCompacted", after, at, cs, err)
		}
	}
	cs := MustChanges(t, s, at)
	if len(cs) != 2 || cs[0].Revision != revs[3] || cs[1].Revision != revs[4] {
		t.Errorf("Changes(%d) after Compact(%d) = %+v; want the commits %d and %d", at, at, cs, revs[3], revs[4])
	}
	keys, _ := MustScan(t, s, "c/", "")
	if len(keys) != 6 {
		t.Errorf("keys after compaction %q; want all 6", keys)
	}
	if got := string(MustGet(t, s, "c/last")); got != "5" {
		t.Errorf("c/last = %s; want 5", got)
	}
	next := MustPut(t, s, "c/6", "6")
	cs = MustChanges(t, s, revs[4])
	if len(cs) != 1 || cs[0].Revision != next {
		t.Errorf("Changes(%d) after a commit that follows a compaction = %+v; want {%d}", revs[4], cs, next)
	}
	// Compacting everything: a follower at the last revision is up to date.
	if err := c.Compact(context.Background(), next); err != nil {
		t.Fatalf("Compact(%d): %v", next, err)
	}
	if cs, err := Changes(t, s, next); err != nil || len(cs) != 0 {
		t.Errorf("Changes(%d) at the compacted head = %+v, %v; want none", next, cs, err)
	}
	if _, err := Changes(t, s, next-1); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Changes(%d) below the compacted head = %v; want ErrCompacted", next-1, err)
	}
}
