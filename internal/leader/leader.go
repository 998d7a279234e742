// Package leader chooses the one replica that does the work that must
// happen once (the session sweeper, the notification sender).
//
// An Elector runs a function while its replica holds the leadership and
// cancels the function's context when the leadership is lost. Single
// process stores (bbolt) use Always; the etcd store elects with etcd's
// concurrency package (Etcd): a session lease of a TTL, a campaign on a
// key prefix, and a new campaign after the session is lost.
//
// The context an etcd leader's fn runs with carries the term's
// store.Fence: the election key and its create revision, and a channel
// closed when the term is known lost. The etcd store commits a write made
// with that context only while the key exists with that revision, so a
// leader paused or cut off past its lease — deposed before it noticed —
// commits nothing.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Elector runs work under leadership.
type Elector interface {
	// Run campaigns until ctx ends. Each time this replica becomes the
	// leader it calls fn, whose context is cancelled when the leadership
	// is lost or ctx ends; Run waits for fn to return before it
	// campaigns again or returns. fn does not overlap with itself. An
	// elector whose leadership can be lost without its knowing puts the
	// term's store.Fence on fn's context, so that the store refuses the
	// writes of a term that is over.
	Run(ctx context.Context, fn func(ctx context.Context))
}

// Always is the Elector of a single process: it is always the leader, and
// Run calls fn once with ctx.
type Always struct{}

// Run calls fn(ctx).
func (Always) Run(ctx context.Context, fn func(ctx context.Context)) { fn(ctx) }

// DefaultTTL is the lease TTL of an etcd election when none is given.
const DefaultTTL = 10 * time.Second

// resignTimeout bounds the wait for etcd when the leadership is given up:
// an etcd that does not answer lets the lease expire instead.
const resignTimeout = 2 * time.Second

// Etcd elects one leader among the replicas whose Etcd electors campaign
// on the same prefix of one etcd cluster.
type Etcd struct {
	client *clientv3.Client
	prefix string
	ttl    time.Duration
	name   string
	log    *slog.Logger
}

// NewEtcd returns an elector campaigning on prefix (e.g.
// "/gatehouse/leader/") with a lease of ttl (rounded up to whole seconds,
// etcd's unit; DefaultTTL when not positive). name identifies this
// replica in the election key's value. A leader that stops answering
// etcd loses the leadership when its lease expires, at most ttl later.
func NewEtcd(c *clientv3.Client, prefix string, ttl time.Duration, name string, log *slog.Logger) *Etcd {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Etcd{client: c, prefix: prefix, ttl: ttl, name: name, log: log}
}

// TTLSeconds returns the lease TTL in etcd's unit, rounded up.
func (e *Etcd) TTLSeconds() int {
	return int((e.ttl + time.Second - 1) / time.Second)
}

// Run campaigns until ctx ends; see Elector. After a failed campaign or a
// lost session it waits a little (at most a third of the TTL) and
// campaigns with a new session.
func (e *Etcd) Run(ctx context.Context, fn func(ctx context.Context)) {
	retry := min(e.ttl/3, time.Second)
	for ctx.Err() == nil {
		if err := e.term(ctx, fn); err != nil && ctx.Err() == nil {
			e.log.Warn("leader election", "err", err, "retry_in", retry.String())
			select {
			case <-ctx.Done():
			case <-time.After(retry):
			}
		}
	}
}

// term is one session: campaign, lead while fn runs, resign.
func (e *Etcd) term(ctx context.Context, fn func(ctx context.Context)) error {
	sess, err := concurrency.NewSession(e.client, concurrency.WithTTL(e.TTLSeconds()), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	defer func() {
		// Give the leadership up at once (rather than at the lease's
		// expiry): revoke the lease, which deletes the election key.
		// ctx may be over, so with a context of its own.
		rctx, cancel := context.WithTimeout(context.Background(), min(e.ttl, resignTimeout))
		_, _ = e.client.Revoke(rctx, sess.Lease())
		cancel()
		sess.Orphan()
	}()
	// The term ends when ctx does or the session is lost (its lease
	// expired or could not be kept alive). lost is closed only in the
	// second case: a leader that shuts down still holds its term until
	// it resigns, and may record what its last work did.
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lost := make(chan struct{})
	var loseOnce sync.Once
	lose := func() { loseOnce.Do(func() { close(lost) }) }
	go func() {
		select {
		case <-sess.Done():
			// The session also ends when ctx does (its keep-alive
			// stops); the lease lives on until the resignation.
			if ctx.Err() == nil {
				lose()
			}
			cancel()
		case <-tctx.Done():
		}
	}()
	el := concurrency.NewElection(sess, e.prefix)
	// A campaign cancelled by ctx resigns with the client's context, which
	// waits for etcd: shutdown does not wait for it (it ends when the
	// client closes).
	campaigned := make(chan error, 1)
	go func() { campaigned <- el.Campaign(tctx, e.name) }()
	select {
	case err := <-campaigned:
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("campaign: %w", err)
		}
	case <-ctx.Done():
		return nil
	}
	// Campaign does not notice a session that expired while it waited:
	// check before leading.
	select {
	case <-sess.Done():
		return errors.New("session expired while campaigning")
	default:
	}
	if tctx.Err() != nil {
		return nil
	}
	// A lease revoked from outside, or the key deleted, ends the term
	// before the keep-alive could notice: watch the key from now on.
	gone, err := e.watchKey(tctx, el.Key(), el.Rev())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch the election key: %w", err)
	}
	go func() {
		select {
		case <-gone:
			lose()
			cancel()
		case <-tctx.Done():
		}
	}()
	fn(store.WithFence(tctx, store.Fence{Lost: lost, Key: el.Key(), Rev: el.Rev()}))
	if ctx.Err() == nil {
		select {
		case <-sess.Done():
			return errors.New("session lost")
		default:
		}
	}
	return nil
}

// watchKey returns a channel closed once key no longer exists with create
// revision rev (deleted, or deleted and made again), watched until ctx
// ends.
//
// The watch starts at etcd's current revision, not at rev+1: etcd serves
// a watch that starts at a past revision from its loop for watchers that
// are behind, which runs every 100 ms, so a loss in the term's first
// moments would be noticed up to 100 ms late. Instead the watch is
// opened from now and the key then read: a loss before the read shows in
// the read, one after it in the watch (which was in place before the
// read). A watch that ends (etcd restarted, the connection lost) is
// opened again the same way.
func (e *Etcd) watchKey(ctx context.Context, key string, rev int64) (<-chan struct{}, error) {
	gone := make(chan struct{})
	wch, stop, lost, err := e.openKeyWatch(ctx, key, rev)
	if err != nil {
		return nil, err
	}
	if lost {
		close(gone)
		return gone, nil
	}
	go func() {
		retry := 10 * time.Millisecond
		for {
			for wr := range wch {
				for _, ev := range wr.Events {
					if ev.Type == clientv3.EventTypeDelete || ev.Kv.CreateRevision != rev {
						stop()
						close(gone)
						return
					}
				}
			}
			stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(retry):
				}
				retry = min(2*retry, time.Second)
				wch, stop, lost, err = e.openKeyWatch(ctx, key, rev)
				if lost {
					close(gone)
					return
				}
				if err == nil {
					break
				}
			}
		}
	}()
	return gone, nil
}

// openKeyWatch opens a watch of key from etcd's current revision, waits
// until etcd has set it up, and then reads key: lost is true when it no
// longer exists with create revision rev. stop ends the watch.
func (e *Etcd) openKeyWatch(ctx context.Context, key string, rev int64) (wch clientv3.WatchChan, stop func(), lost bool, err error) {
	wctx, cancel := context.WithCancel(ctx)
	wch = e.client.Watch(wctx, key, clientv3.WithCreatedNotify())
	select {
	case wr, ok := <-wch:
		if !ok || !wr.Created {
			cancel()
			if err := ctx.Err(); err != nil {
				return nil, nil, false, err
			}
			if !ok {
				return nil, nil, false, errors.New("watch ended before it was set up")
			}
			if err := wr.Err(); err != nil {
				return nil, nil, false, err
			}
			return nil, nil, false, errors.New("watch answered before it was set up")
		}
	case <-ctx.Done():
		cancel()
		return nil, nil, false, ctx.Err()
	}
	rctx, rcancel := context.WithTimeout(ctx, max(e.ttl, resignTimeout))
	resp, err := e.client.Get(rctx, key)
	rcancel()
	if err != nil {
		cancel()
		return nil, nil, false, err
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != rev {
		cancel()
		return nil, nil, true, nil
	}
	return wch, cancel, false, nil
}
