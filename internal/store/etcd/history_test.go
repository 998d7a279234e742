package etcd

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestHistory_AnswersOnlyWhatTheWatchDelivered: the kept commits answer a
// range only when they hold all of it — from where the watch started or
// the last commit dropped, up to a commit the watch delivered — and wait
// briefly for a commit not delivered yet.
func TestHistory_AnswersOnlyWhatTheWatchDelivered(t *testing.T) {
	ctx := context.Background()
	var h history
	h.reset(10) // the watch delivers from revision 10 on
	revs := func(cs []store.Change) []uint64 {
		var out []uint64
		for _, c := range cs {
			out = append(out, c.Revision)
		}
		return out
	}
	h.add(12, []string{"a"}, true)
	h.add(15, []string{"b"}, true)
	if got, ok := h.since(ctx, 9, 15); !ok || !slices.Equal(revs(got), []uint64{12, 15}) {
		t.Errorf("since(9, 15) = %v, %t; want [12 15]", revs(got), ok)
	}
	if got, ok := h.since(ctx, 12, 15); !ok || !slices.Equal(revs(got), []uint64{15}) {
		t.Errorf("since(12, 15) = %v, %t; want [15]", revs(got), ok)
	}
	if _, ok := h.since(ctx, 8, 15); ok {
		t.Error("since(8, 15) answered: revision 9 is before the watch started")
	}
	// A commit the watch has not delivered: wait for it, or give up.
	go func() { time.Sleep(5 * time.Millisecond); h.add(17, []string{"c"}, true) }()
	if got, ok := h.since(ctx, 15, 17); !ok || !slices.Equal(revs(got), []uint64{17}) {
		t.Errorf("since(15, 17) = %v, %t; want [17] once delivered", revs(got), ok)
	}
	start := time.Now()
	if _, ok := h.since(ctx, 17, 20); ok || time.Since(start) < historyWait {
		t.Errorf("since(17, 20) answered %t after %v; want no answer after %v", ok, time.Since(start), historyWait)
	}
	// A record that does not decode: ranges over it go to etcd, later
	// ones do not.
	h.add(18, nil, false)
	h.add(19, []string{"d"}, true)
	if _, ok := h.since(ctx, 17, 19); ok {
		t.Error("since(17, 19) answered over a damaged record")
	}
	if got, ok := h.since(ctx, 18, 19); !ok || !slices.Equal(revs(got), []uint64{19}) {
		t.Errorf("since(18, 19) = %v, %t; want [19]", revs(got), ok)
	}
	// Past historyKeep commits the oldest are dropped.
	for r := int64(20); r < 20+historyKeep+5; r++ {
		h.add(r, []string{"e"}, true)
	}
	last := int64(20 + historyKeep + 4)
	if _, ok := h.since(ctx, 19, last); ok {
		t.Error("answered from dropped commits")
	}
	if got, ok := h.since(ctx, last-3, last); !ok || len(got) != 3 {
		t.Errorf("since(last-3, last) = %d commits, %t; want 3", len(got), ok)
	}
}
