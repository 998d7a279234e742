package etcd

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Changes reads the change history of the head key. A watch that starts
// at a past revision is served by etcd's loop for watchers that are
// behind, which runs every 100 ms: reading the history that way made
// every write wait about 100 ms for its own replica's snapshot, and every
// other replica as long to follow it. The store's own watch of the head
// key is current and delivers each commit at once, so the store keeps the
// commits it delivered, and Changes answers from them when they cover the
// range it asks for.

const (
	// historyKeep bounds the commits kept: a follower further behind
	// reads the history from etcd.
	historyKeep = 4096
	// historyWait bounds the wait for the watch to deliver a commit the
	// transaction already sees (the replica's own commit is signalled
	// before its watch event arrives), below etcd's 100 ms.
	historyWait = 50 * time.Millisecond
)

// history is the commits the head watch delivered: every head record
// with a revision of at least from, in order, up to to.
type history struct {
	mu      sync.Mutex
	changes []store.Change
	from    int64 // no commit at or after from is missing from changes
	to      int64 // the watch delivered every commit up to to
	arrived chan struct{}
}

// reset empties the history: the watch delivers from revision from on.
func (h *history) reset(from int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changes, h.from, h.to = nil, from, from-1
	if h.arrived == nil {
		h.arrived = make(chan struct{})
	}
}

// add records the commit at rev; keys is nil for a record that does not
// decode, which is then left to the history read from etcd (it reports
// the damage).
func (h *history) add(rev int64, keys []string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev <= h.to {
		return
	}
	if !ok {
		h.changes, h.from = nil, rev+1
	} else {
		h.changes = append(h.changes, store.Change{Revision: uint64(rev), Keys: keys})
		if n := len(h.changes) - historyKeep; n > 0 {
			h.from = int64(h.changes[n-1].Revision) + 1
			h.changes = append(h.changes[:0:0], h.changes[n:]...)
		}
	}
	h.to = rev
	close(h.arrived)
	h.arrived = make(chan struct{})
}

// since returns the commits after after up to head when the history holds
// all of them, waiting up to historyWait for the watch to deliver head;
// ok is false when it does not hold them.
func (h *history) since(ctx context.Context, after, head int64) (out []store.Change, ok bool) {
	var timeout <-chan time.Time
	for {
		h.mu.Lock()
		if after+1 < h.from {
			h.mu.Unlock()
			return nil, false
		}
		if h.to >= head {
			for _, c := range h.changes {
				if int64(c.Revision) > after && int64(c.Revision) <= head {
					// The caller owns what it gets.
					out = append(out, store.Change{Revision: c.Revision, Keys: slices.Clone(c.Keys)})
				}
			}
			h.mu.Unlock()
			return out, true
		}
		arrived := h.arrived
		h.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(historyWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-arrived:
		case <-timeout:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// delivered returns the revision up to which the watch delivered every
// commit.
func (h *history) delivered() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.to
}
