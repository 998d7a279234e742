package etcd

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var _ store.Freshness = (*Store)(nil)

// maxConfirmations bounds the confirmations kept for CurrentAsOf. Only a
// reader far behind needs old ones; without them it is reported stale
// from an older confirmation, never fresher than it is.
const maxConfirmations = 64

// confirmation says that by time at the store had made no commit after
// revision rev.
type confirmation struct {
	rev uint64
	at  time.Time
}

// confirmations keeps the confirmations that are not dominated by another
// (one for an older or equal revision at a later or equal time): sorted
// by revision, their times ascend too.
type confirmations struct {
	mu  sync.Mutex
	pts []confirmation
}

func (c *confirmations) add(rev uint64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// i: the first confirmation for a later revision.
	i := sort.Search(len(c.pts), func(k int) bool { return c.pts[k].rev > rev })
	if i > 0 && !c.pts[i-1].at.Before(at) {
		return // an earlier revision was confirmed as late: nothing new
	}
	// Confirmations for rev or later revisions at earlier or equal times
	// are dominated by this one; they start at the first one for rev.
	lo := sort.Search(len(c.pts), func(k int) bool { return c.pts[k].rev >= rev })
	hi := lo
	for hi < len(c.pts) && !c.pts[hi].at.After(at) {
		hi++
	}
	c.pts = append(c.pts[:lo], append([]confirmation{{rev: rev, at: at}}, c.pts[hi:]...)...)
	if len(c.pts) > maxConfirmations {
		c.pts = append(c.pts[:0], c.pts[len(c.pts)-maxConfirmations:]...)
	}
}

// asOf returns the latest time confirmed for rev or an earlier revision.
func (c *confirmations) asOf(rev uint64) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := sort.Search(len(c.pts), func(k int) bool { return c.pts[k].rev > rev })
	if i == 0 {
		return time.Time{}, false
	}
	return c.pts[i-1].at, true
}

// latest returns the time of the newest confirmation (zero without one).
func (c *confirmations) latest() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pts) == 0 {
		return time.Time{}
	}
	return c.pts[len(c.pts)-1].at
}

// CurrentAsOf implements store.Freshness. Confirmations come from every
// transaction's first read and, when no transaction read for
// Options.FreshnessInterval, from a read of the head key made for it:
// each is a linearizable read of the head key, which every commit writes,
// sent at some time t; its mod revision is the last commit made before t.
func (s *Store) CurrentAsOf(rev uint64) (time.Time, bool) { return s.fresh.asOf(rev) }

// confirm records what a linearizable read of the head key sent at
// sent saw: head, the head key's mod revision (0 when it does not exist:
// no commit yet).
func (s *Store) confirm(head int64, sent time.Time) {
	// Confirmations are asked about store revisions (the prefix's base
	// added), as every revision the store hands out is.
	var rev uint64
	if head > 0 {
		rev = s.out(head)
	}
	s.fresh.add(rev, sent)
}

// keepFresh reads the head key whenever no transaction did for an
// interval, so that a quiet store is still confirmed current, and wakes
// the subscribers when the read shows a commit their watch has not
// reported (a watch cut off from etcd says nothing; this read fails
// instead, and confirms nothing).
func (s *Store) keepFresh(ctx context.Context, every time.Duration) {
	defer close(s.freshDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(s.fresh.latest()) < every {
			continue
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
		resp, err := s.c.Get(rctx, s.headKey)
		cancel()
		if err != nil {
			continue
		}
		var head int64
		if len(resp.Kvs) > 0 {
			head = resp.Kvs[0].ModRevision
		}
		s.confirm(head, sent)
		s.observe(resp.Header.Revision)
		s.signal(head)
	}
}
