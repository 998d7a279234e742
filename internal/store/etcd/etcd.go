// Package etcd is the store.Store driver on an etcd v3 cluster, so that
// several Gatehouse replicas share one consistent store.
//
// Layout: every key lives under a prefix (default /gatehouse/):
//
//	<prefix>kv/<key>    a value, sealed in the bbolt driver's integrity
//	                    envelope (CRC-32C over the key and the payload);
//	                    its etcd mod revision is the value's mod revision
//	<prefix>leader/     the leader election (Store.Elector)
//	<prefix>meta/head   written by every commit, as its last operation:
//	                    the sorted keys the commit wrote or deleted,
//	                    sealed the same way. Its etcd history is the
//	                    store's change log (ReadTx.Changes).
//	<prefix>meta/base   the prefix's revision base (RaiseRevision),
//	                    absent (0) unless the prefix was loaded from a
//	                    store whose revision was ahead of etcd's
//
// The store revision is etcd's revision plus the prefix's base: a
// revision returned by Update on one replica is a valid revision to wait
// for on every other. The base is 0 unless a copy of another store was
// loaded into the prefix (gatehoused migrate): then it keeps the store's
// revisions above those of the copied data, whose ids, etags and audit
// and outbox keys were made from the source's revisions.
//
// A View reads at one etcd revision: the first request of the transaction
// (a read of the head key) fixes it and every later Get and Scan asks for
// that revision. An Update runs its function over reads at one revision,
// buffers the writes and commits them in one etcd transaction guarded by
// the mod revision of every key it read (0 for a key read as missing).
// A transaction that scanned, or read more keys than etcd lets one
// transaction compare, is guarded by the head key instead, which every
// commit writes: it commits only if nothing committed since its reads
// (etcd's range comparisons cannot see a key deleted from a range). When a
// guard fails, the function runs again after a short backoff.
//
// Under a steady stream of commits a write guarded by the head would run
// again on every one of them, related or not, and might never commit. So
// when the head guard fails, the driver first checks the commits in
// between, from the head records its watch delivered (history.go), against
// what the transaction read: the keys it Got (found or not) and, for each
// Scan, the keys with its prefix after its startAfter, up to the key at
// which the function ended the scan (to the end of the prefix otherwise).
// When none of those commits wrote or deleted any of them, the same writes
// are sent again guarded by the head at the last of those commits, without
// running the function again (a rebase), at most maxRebases times a run.
//
// A rebase is serializable. Let R be the revision the transaction read at,
// H0 the head then (the last commit at or before R) and H1 the head the
// rebase guards with. Every commit writes the head key, listing every key
// it wrote or deleted, and nothing else writes under <prefix>kv/, so the
// commits in (H0, H1] are exactly the head records in that range, and a
// key none of them lists has the same value (or absence) and mod revision
// at H1 as at R; a range none of them touches holds the same keys. Hence
// every Get and Scan of the function returns at H1 exactly what it
// returned at R: run at H1, the function would have made the same writes,
// and its commit, guarded by the head at H1, lands right after H1 with
// nothing in between — the same as a run at H1 that commits at once. A
// gap the history does not hold in full (compacted, a damaged record, or
// not delivered within historyWait) is not checked: the function runs
// again. A transaction whose reads the keys and ranges do not describe
// runs again too: one that read the change history (Changes ends at the
// head it read at) or saw a read fail with an error it may have ignored.
// The transaction's Revision stays R: it is still a revision its reads
// see, and below the commit's, which is all the contract says of it.
//
// A write under a store.Fence (the work of the leader) also compares the
// create revision of the fence's key, the election key of the term, in
// the same etcd transaction: a leader deposed before it noticed commits
// nothing and gets store.ErrFenced, not a retry.
package etcd

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/internal/leader"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

// Defaults. MaxTxnOps and MaxRequestBytes are etcd's own defaults
// (--max-txn-ops, --max-request-bytes); set them to the cluster's values.
const (
	DefaultPrefix          = "/gatehouse/"
	DefaultDialTimeout     = 10 * time.Second
	DefaultMaxTxnOps       = 128
	DefaultMaxRequestBytes = 1536 * 1024
	// DefaultRequestTimeout bounds the wait for etcd's answer to one
	// request: past it the operation fails with store.ErrUnavailable.
	DefaultRequestTimeout = 5 * time.Second
	// DefaultFreshnessInterval is how often a quiet store confirms that
	// it knows of every commit (store.Freshness).
	DefaultFreshnessInterval = time.Second

	// requestReserve is the part of etcd's request size limit kept for
	// what a commit sends besides the caller's keys and values: the
	// prefix of each key, the envelopes, the head record and the guards.
	requestReserve = 64 << 10
	// scanPage is how many keys one range request of a Scan reads.
	scanPage = 512
	// maxBackoff bounds the wait between runs of a conflicting Update.
	maxBackoff = 200 * time.Millisecond
	// maxRebases bounds how many times one run of an Update's function
	// is committed again at a newer head (see the package comment)
	// before the function runs again.
	maxRebases = 32
	// reconnectMaxDelay bounds the wait between attempts to reconnect to
	// an etcd member that is down.
	reconnectMaxDelay = time.Second
)

// Options configure Open.
type Options struct {
	// Endpoints are the etcd client endpoints (host:port or URLs).
	Endpoints []string
	// Prefix is put before every key (DefaultPrefix when empty).
	Prefix string
	// TLS, when set, secures the connection (CA, client certificate).
	TLS *tls.Config
	// Username and Password authenticate with etcd's auth, when set.
	Username, Password string
	// DialTimeout bounds the wait for etcd at Open (DefaultDialTimeout).
	DialTimeout time.Duration
	// MaxTxnOps and MaxRequestBytes are the cluster's --max-txn-ops and
	// --max-request-bytes (etcd's defaults when zero).
	MaxTxnOps       int
	MaxRequestBytes int
	// RequestTimeout bounds the wait for each request to etcd
	// (DefaultRequestTimeout): an etcd that does not answer in time (all
	// members down, paused or cut off, or no leader) fails the operation
	// with store.ErrUnavailable instead of holding it until the caller's
	// deadline, or forever without one. etcd's client otherwise waits
	// for a connection as long as the caller lets it.
	RequestTimeout time.Duration
	// FreshnessInterval is how often the store confirms with a
	// linearizable read that it knows of every commit when no
	// transaction did so meanwhile (DefaultFreshnessInterval); see
	// CurrentAsOf.
	FreshnessInterval time.Duration
	// BackupDir is where Backup stages its copy (os.TempDir when empty).
	BackupDir string
}

// Store is the etcd driver. It implements store.Store and store.Compactor.
type Store struct {
	c        *clientv3.Client
	prefix   string
	kvPrefix string
	headKey  string
	baseKey  string
	lim      store.Limits
	maxCmps  int
	maxReq   int
	eps      string // the endpoints, for errors
	// reqTimeout bounds each request to etcd (Options.RequestTimeout).
	reqTimeout time.Duration
	// fresh holds the confirmations of CurrentAsOf.
	fresh confirmations
	// backupDir is Options.BackupDir.
	backupDir string
	// base is added to etcd's revisions to make the store's.
	base     atomic.Uint64
	rev      atomic.Uint64 // the highest etcd revision seen
	notified atomic.Uint64 // the highest commit revision signalled

	mu     sync.Mutex
	closed bool
	txns   sync.WaitGroup

	subsMu sync.Mutex
	subs   map[*sub]struct{}

	stopWatch context.CancelFunc
	watchDone chan struct{}
	freshDone chan struct{}
	// hist is the commits the head watch delivered (history.go).
	hist history
}

type sub struct {
	ch   chan struct{}
	once sync.Once
}

var (
	_ store.Store     = (*Store)(nil)
	_ store.Compactor = (*Store)(nil)
)

// KeepAliveTime and KeepAliveTimeout are the client's keepalive: after
// KeepAliveTime without a byte from a member that has requests in flight,
// it pings, and closes the connection when no answer comes within
// KeepAliveTimeout. Requests stuck on a member that stopped answering fail
// over within their sum. 10 s is the shortest ping interval grpc-go allows
// a client, and above the 5 s etcd's --grpc-keepalive-min-time lets through.
const (
	KeepAliveTime    = 10 * time.Second
	KeepAliveTimeout = 3 * time.Second
)

// Open connects to etcd and returns the store under opts.Prefix. It waits
// at most opts.DialTimeout for etcd to answer and fails with an error
// naming the endpoints when it does not.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.MaxTxnOps <= 0 {
		opts.MaxTxnOps = DefaultMaxTxnOps
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.FreshnessInterval <= 0 {
		opts.FreshnessInterval = DefaultFreshnessInterval
	}
	if opts.MaxTxnOps < 2 || opts.MaxRequestBytes <= 2*requestReserve {
		return nil, fmt.Errorf("etcd: limits too small (max txn ops %d, max request bytes %d)", opts.MaxTxnOps, opts.MaxRequestBytes)
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		DialTimeout: opts.DialTimeout,
		TLS:         opts.TLS,
		Username:    opts.Username,
		Password:    opts.Password,
		Logger:      zap.NewNop(),
		// A member that stops answering with its connections open (a
		// hung machine, a partition that drops packets) would hold every
		// request sent to it, and the watch that follows other replicas'
		// commits, for good: keepalive pings close such a connection, and
		// its requests move to the other members.
		DialKeepAliveTime:    KeepAliveTime,
		DialKeepAliveTimeout: KeepAliveTimeout,
		// Leave room for the largest request etcd accepts.
		MaxCallSendMsgSize: opts.MaxRequestBytes + requestReserve,
		// gRPC's default backoff between connection attempts grows to
		// two minutes: an etcd back after an outage of a minute would be
		// noticed a minute late. Retry at least every reconnectMaxDelay.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: reconnectMaxDelay},
			MinConnectTimeout: opts.RequestTimeout,
		})},
	})
	if err != nil {
		return nil, unreachable(opts, err)
	}
	s := &Store{
		c:        c,
		prefix:   opts.Prefix,
		kvPrefix: opts.Prefix + "kv/",
		headKey:  opts.Prefix + "meta/head",
		baseKey:  opts.Prefix + "meta/base",
		// One operation of every transaction writes the head key.
		lim:        store.Limits{MaxOps: opts.MaxTxnOps - 1, MaxTxnBytes: opts.MaxRequestBytes - requestReserve},
		maxCmps:    opts.MaxTxnOps,
		maxReq:     opts.MaxRequestBytes,
		eps:        strings.Join(opts.Endpoints, ","),
		reqTimeout: opts.RequestTimeout,
		subs:       map[*sub]struct{}{},
		backupDir:  opts.BackupDir,
	}
	pctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	sent := time.Now()
	resp, err := c.Get(pctx, s.headKey)
	var base uint64
	if err == nil {
		base, _, err = s.readBase(pctx, resp.Header.Revision)
	}
	cancel()
	if err != nil {
		c.Close()
		return nil, unreachable(opts, err)
	}
	s.base.Store(base)
	s.observe(resp.Header.Revision)
	s.notified.Store(uint64(resp.Header.Revision))
	if len(resp.Kvs) > 0 {
		s.confirm(resp.Kvs[0].ModRevision, sent)
	} else {
		s.confirm(0, sent)
	}
	wctx, stop := context.WithCancel(context.Background())
	s.stopWatch, s.watchDone, s.freshDone = stop, make(chan struct{}), make(chan struct{})
	s.hist.reset(resp.Header.Revision + 1)
	go s.follow(wctx, resp.Header.Revision+1)
	go s.keepFresh(wctx, opts.FreshnessInterval)
	return s, nil
}

// unreachable is the error of an Open that failed: it names the
// endpoints, and says whether etcd did not answer in time or refused.
func unreachable(opts Options, err error) error {
	eps := strings.Join(opts.Endpoints, ",")
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded || status.Code(err) == codes.Unavailable {
		if why := diagnose(opts); why != "" {
			return fmt.Errorf("etcd at %s did not answer within %v (%s): %w", eps, opts.DialTimeout, why, err)
		}
		return fmt.Errorf("etcd at %s did not answer within %v: %w", eps, opts.DialTimeout, err)
	}
	return fmt.Errorf("etcd at %s: %w", eps, err)
}

// Client returns the etcd client, for work that shares the connection.
func (s *Store) Client() *clientv3.Client { return s.c }

// Limits returns the bounds of one transaction: one operation and
// requestReserve bytes less than etcd's, for the head record.
func (s *Store) Limits() store.Limits { return s.lim }

// Revision returns the store revision of the highest etcd revision the
// store has seen (plus the prefix's base): its own commits, every
// transaction's read revision, and the commits of other replicas its
// watch reports. Every revision the driver hands out goes through out;
// code that compares raw etcd revisions with store revisions must too.
func (s *Store) Revision() uint64 { return s.out(int64(s.rev.Load())) }

// out turns an etcd revision into the store's.
func (s *Store) out(rev int64) uint64 { return uint64(rev) + s.base.Load() }

func (s *Store) observe(rev int64) {
	for {
		cur := s.rev.Load()
		if uint64(rev) <= cur || s.rev.CompareAndSwap(cur, uint64(rev)) {
			return
		}
	}
}

// signal wakes every subscriber once for commits up to rev not signalled
// yet.
func (s *Store) signal(rev int64) {
	for {
		cur := s.notified.Load()
		if uint64(rev) <= cur {
			return
		}
		if s.notified.CompareAndSwap(cur, uint64(rev)) {
			break
		}
	}
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for sb := range s.subs {
		select {
		case sb.ch <- struct{}{}:
		default:
		}
	}
}

// follow watches the head key, which every commit writes, so that
// Revision and Subscribe learn of other replicas' commits.
func (s *Store) follow(ctx context.Context, from int64) {
	defer close(s.watchDone)
	wait := 10 * time.Millisecond
	for ctx.Err() == nil {
		wch := s.c.Watch(clientv3.WithRequireLeader(ctx), s.headKey, clientv3.WithRev(from))
		for resp := range wch {
			if resp.CompactRevision > 0 {
				// Commits were compacted before the watch saw them:
				// signal, so that followers reload, and go on from now.
				from = resp.CompactRevision
				s.hist.reset(from)
				s.observe(resp.CompactRevision)
				s.signal(resp.CompactRevision)
				break
			}
			if resp.Err() != nil {
				break
			}
			wait = 10 * time.Millisecond
			for _, ev := range resp.Events {
				r := ev.Kv.ModRevision
				from = max(from, r+1)
				keys, err := decodeKeys(bolt.Unseal([]byte(s.headKey), ev.Kv.Value))
				s.hist.add(r, keys, err == nil && ev.Type == clientv3.EventTypePut)
				s.observe(r)
				s.signal(r)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			wait = min(2*wait, time.Second)
		}
	}
}

// Subscribe implements store.Store.
func (s *Store) Subscribe() (<-chan struct{}, func()) {
	sb := &sub{ch: make(chan struct{}, 1)}
	s.subsMu.Lock()
	if s.subs != nil {
		s.subs[sb] = struct{}{}
	} else {
		close(sb.ch)
	}
	s.subsMu.Unlock()
	return sb.ch, func() {
		s.subsMu.Lock()
		defer s.subsMu.Unlock()
		if _, ok := s.subs[sb]; ok {
			delete(s.subs, sb)
			sb.once.Do(func() { close(sb.ch) })
		}
	}
}

// Close waits for the transactions in flight, ends every subscription and
// closes the connection. Closing twice is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.txns.Wait()
	s.stopWatch()
	<-s.watchDone
	<-s.freshDone
	s.subsMu.Lock()
	for sb := range s.subs {
		sb.once.Do(func() { close(sb.ch) })
	}
	s.subs = nil
	s.subsMu.Unlock()
	return s.c.Close()
}

// enter registers a transaction, or fails when the store is closed.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.txns.Add(1)
	return nil
}

// View implements store.Store.
func (s *Store) View(ctx context.Context, fn func(store.ReadTx) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.txns.Done()
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	return fn(tx)
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) (uint64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.txns.Done()
	backoff := time.Millisecond
	for {
		if err := store.CheckFence(ctx); err != nil {
			return 0, err
		}
		tx, err := s.begin(ctx)
		if err != nil {
			return 0, err
		}
		tx.w = &writes{ops: map[string]*op{}, reads: map[string]int64{}}
		if err := fn(tx); err != nil {
			return 0, err
		}
		if len(tx.w.ops) == 0 {
			return s.out(tx.rev), nil
		}
		if err := store.CheckFence(ctx); err != nil {
			return 0, err
		}
		guard := tx.head
		rev, ok, moved, err := s.commit(ctx, tx, guard)
		// The head moved past a transaction guarded by it: when no commit
		// in between touched what the function read, its reads hold at
		// the new head too, and the same writes are sent again guarded
		// by it (rebase) rather than running the function again.
		for n := 0; err == nil && !ok && n < maxRebases; n++ {
			next, valid := s.rebase(ctx, tx, guard, moved)
			if !valid {
				break
			}
			if err := store.CheckFence(ctx); err != nil {
				return 0, err
			}
			guard = next
			rev, ok, moved, err = s.commit(ctx, tx, guard)
		}
		if err != nil {
			return 0, err
		}
		if ok {
			s.observe(rev)
			s.signal(rev)
			return s.out(rev), nil
		}
		// What the function read changed before the commit: run it again.
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, maxBackoff)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(d):
		}
	}
}

// begin starts a transaction at etcd's current revision.
// Its read of the head key is linearizable: it also confirms that no
// commit after the head's was made before it was sent (CurrentAsOf).
func (s *Store) begin(ctx context.Context) (*tx, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	sent := time.Now()
	resp, err := s.c.Get(rctx, s.headKey)
	if err != nil {
		return nil, s.mapErr(ctx, err)
	}
	t := &tx{s: s, ctx: ctx, rev: resp.Header.Revision}
	if len(resp.Kvs) > 0 {
		t.head = resp.Kvs[0].ModRevision
	}
	s.confirm(t.head, sent)
	s.observe(t.rev)
	return t, nil
}

// request returns the context of one request to etcd: ctx bounded by
// Options.RequestTimeout.
func (s *Store) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.reqTimeout)
}

// rebase decides whether t's reads, made at t.rev where the last commit
// was from, still hold after the commits up to moved, the head's mod
// revision a failed commit guarded by from found: they do when the
// commits the head watch delivered after from (up to moved, or the
// latest delivered if later) cover the whole gap and none of them wrote
// a key t read (Get, found or not) or a key inside a range t scanned
// (up to where the scan stopped). It returns the revision of the last of
// those commits, the head to guard the commit with next. valid is false
// when the function must run again: a conflict, a gap the history does
// not cover (compacted, or not delivered within historyWait), or a
// transaction whose reads the check cannot describe (see writes.opaque).
func (s *Store) rebase(ctx context.Context, t *tx, from, moved int64) (next int64, valid bool) {
	if t.w.opaque || moved <= from {
		return 0, false
	}
	to := max(moved, s.hist.delivered())
	changes, ok := s.hist.since(ctx, from, to)
	if !ok {
		return 0, false
	}
	next = moved
	for _, c := range changes {
		for _, k := range c.Keys {
			if t.w.touches(k) {
				return 0, false
			}
		}
		next = max(next, int64(c.Revision))
	}
	return next, true
}

// commit sends tx's writes in one etcd transaction guarded by its reads
// (or, for a transaction that scanned or read too many keys to compare,
// by the head key at revision head) and by the fence ctx carries. ok is
// false when a guard of its reads failed; then moved is the head's mod
// revision etcd found instead of head, when the head guarded the commit
// (0 otherwise). A failed fence is store.ErrFenced.
func (s *Store) commit(ctx context.Context, t *tx, head int64) (rev int64, ok bool, moved int64, err error) {
	fence, fenced := store.FenceOf(ctx)
	fenced = fenced && fence.Key != ""
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range t.w.ops {
			if !yield(k) {
				return
			}
		}
	})
	size := 0
	ops := make([]clientv3.Op, 0, len(keys)+1)
	for _, k := range keys {
		full := s.kvPrefix + k
		if o := t.w.ops[k]; o.del {
			ops = append(ops, clientv3.OpDelete(full))
			size += len(full) + 16
		} else {
			v := bolt.Seal([]byte(k), o.val)
			ops = append(ops, clientv3.OpPut(full, string(v)))
			size += len(full) + len(v) + 16
		}
	}
	record := bolt.Seal([]byte(s.headKey), encodeKeys(keys))
	ops = append(ops, clientv3.OpPut(s.headKey, string(record)))
	size += len(s.headKey) + len(record) + 16
	var cmps []clientv3.Cmp
	var orElse []clientv3.Op
	if fenced {
		// The term lasts while its key exists with the create revision
		// it had when the term began. When the transaction fails, its
		// else branch reads the key to tell a lost term from a conflict.
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(fence.Key), "=", fence.Rev))
		orElse = append(orElse, clientv3.OpGet(fence.Key, clientv3.WithKeysOnly()))
		size += 2*len(fence.Key) + 48
	}
	headGuard := t.w.scanned || len(cmps)+len(t.w.reads) > s.maxCmps
	if headGuard {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.headKey), "=", head))
		orElse = append(orElse, clientv3.OpGet(s.headKey, clientv3.WithKeysOnly()))
		size += 2*len(s.headKey) + 48
	} else {
		for k, r := range t.w.reads {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.kvPrefix+k), "=", r))
			size += len(s.kvPrefix) + len(k) + 24
		}
	}
	if size > s.maxReq {
		return 0, false, 0, fmt.Errorf("%w: the commit would send about %d bytes to etcd, more than its %d", store.ErrTxnTooLarge, size, s.maxReq)
	}
	rctx, cancel := s.request(ctx)
	defer cancel()
	resp, err := s.c.Txn(rctx).If(cmps...).Then(ops...).Else(orElse...).Commit()
	if err != nil {
		mayHave := mayHaveApplied(err)
		err = s.mapErr(ctx, err)
		if mayHave && errors.Is(err, store.ErrUnavailable) {
			// The commit may have reached etcd before it stopped answering.
			err = fmt.Errorf("%w: %w", store.ErrCommitUnknown, err)
		}
		return 0, false, 0, err
	}
	if resp.Succeeded {
		return resp.Header.Revision, true, 0, nil
	}
	if len(resp.Responses) != len(orElse) {
		return 0, false, 0, fmt.Errorf("etcd: a failed commit returned %d reads, not %d", len(resp.Responses), len(orElse))
	}
	if fenced {
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 || kvs[0].CreateRevision != fence.Rev {
			return 0, false, 0, fmt.Errorf("%w (the election key %s of revision %d is gone at revision %d)", store.ErrFenced, fence.Key, fence.Rev, resp.Header.Revision)
		}
	}
	if headGuard {
		if kvs := resp.Responses[len(resp.Responses)-1].GetResponseRange().GetKvs(); len(kvs) > 0 {
			moved = kvs[0].ModRevision
		}
	}
	return resp.Header.Revision, false, moved, nil
}

// mapErr turns an etcd client error into the store's; the table is in
// docs/design-choices.md ("etcd errors"). Every etcd error becomes one of
// the store's sentinels, so that the gRPC edge answers each with its own
// code and never with INTERNAL:
//
//   - no connection, no leader, a leader change, a member stopped,
//     behind or unhealthy, a request timeout inside etcd, its CORRUPT
//     alarm, and any etcd error not listed below: store.ErrUnavailable;
//   - "too many requests" (etcd's apply queue is full): ErrUnavailable
//     with store.ErrOverloaded;
//   - permission denied, an invalid or expired auth token, a failed
//     authentication, the user or its role gone: store.ErrAccessDenied;
//   - the NOSPACE alarm (database over --quota-backend-bytes):
//     store.ErrNoSpace, as a full disk under bbolt;
//   - a request etcd finds too large, or with too many operations:
//     store.ErrTxnTooLarge and store.ErrTooManyOps (the cluster's limits
//     are below the ones the driver was given);
//   - a compacted revision: store.ErrCompacted.
func (s *Store) mapErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	// etcd's client converts its server's statuses; one that reaches us
	// unconverted is converted here.
	err = rpctypes.Error(err)
	switch {
	case errors.Is(err, context.DeadlineExceeded), status.Code(err) == codes.DeadlineExceeded:
		// The caller's context is live: the request's own bound passed.
		return fmt.Errorf("%w: etcd at %s did not answer within %v", store.ErrUnavailable, s.eps, s.reqTimeout)
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, rpctypes.ErrCompacted):
		return fmt.Errorf("%w: %v", store.ErrCompacted, err)
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("%w: etcd at %s refused a transaction within the %d operations this replica assumes (%v): set etcd's --max-txn-ops to at least %d",
			store.ErrTooManyOps, s.eps, s.maxCmps, err, s.maxCmps)
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("%w: etcd at %s refused a request within the %d bytes this replica assumes (%v): set etcd's --max-request-bytes to at least %d",
			store.ErrTxnTooLarge, s.eps, s.maxReq, err, s.maxReq)
	case status.Code(err) == codes.ResourceExhausted && strings.Contains(err.Error(), "larger than max"):
		// gRPC refused a message beyond its size limit.
		return fmt.Errorf("%w: %v", store.ErrTxnTooLarge, err)
	case errors.Is(err, rpctypes.ErrNoSpace):
		return fmt.Errorf("%w: etcd at %s raised its NOSPACE alarm: its database reached --quota-backend-bytes (%v); compact, defragment and disarm the alarm (docs/operations.md)",
			store.ErrNoSpace, s.eps, err)
	case errors.Is(err, rpctypes.ErrTooManyRequests):
		return fmt.Errorf("%w: %w: etcd at %s: %v", store.ErrUnavailable, store.ErrOverloaded, s.eps, err)
	case accessDenied(err):
		return fmt.Errorf("%w: etcd at %s: %v", store.ErrAccessDenied, s.eps, err)
	case errors.Is(err, rpctypes.ErrCorrupt):
		return fmt.Errorf("%w: etcd at %s raised its CORRUPT alarm: its members disagree on the data (%v)", store.ErrUnavailable, s.eps, err)
	case grpcCode(err) == codes.Unavailable:
		// No connection, no leader, a leader change, a timeout inside
		// etcd: its client gave up retrying.
		return fmt.Errorf("%w: etcd at %s: %v", store.ErrUnavailable, s.eps, err)
	}
	// Not a leader or learner, a future revision (a member behind), and
	// errors of requests the driver never sends (leases, members, empty
	// or duplicate keys): etcd could not serve this request.
	return fmt.Errorf("%w: etcd at %s refused the request: %v", store.ErrUnavailable, s.eps, err)
}

// accessDenied reports whether err is etcd refusing the credentials the
// store connected with, or their permissions.
func accessDenied(err error) bool {
	for _, e := range []error{
		rpctypes.ErrPermissionDenied, rpctypes.ErrInvalidAuthToken, rpctypes.ErrAuthFailed,
		rpctypes.ErrUserNotFound, rpctypes.ErrUserEmpty, rpctypes.ErrRoleNotFound, rpctypes.ErrRoleNotGranted,
		rpctypes.ErrPermissionNotGranted, rpctypes.ErrAuthOldRevision, rpctypes.ErrAuthNotEnabled,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	c := grpcCode(err)
	return c == codes.PermissionDenied || c == codes.Unauthenticated
}

// grpcCode is the code of an etcd client error: an etcd server error's
// (rpctypes.EtcdError: no leader, leader changed, request timed out, …),
// else its gRPC status code.
func grpcCode(err error) codes.Code {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code()
	}
	return status.Code(err)
}

// mayHaveApplied reports whether a commit that failed with err may have been
// applied: etcd took the request and did not say it refused it.
func mayHaveApplied(err error) bool {
	err = rpctypes.Error(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		c := ee.Code()
		return c == codes.Unavailable || c == codes.DeadlineExceeded
	}
	return true
}

// Compact implements store.Compactor with etcd's Compact: the history of
// every key in the cluster before rev is dropped, so ReadTx.Changes with
// an earlier revision is store.ErrCompacted from then on.
func (s *Store) Compact(ctx context.Context, rev uint64) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.txns.Done()
	erev := int64(rev) - int64(s.base.Load())
	if erev <= 0 {
		return nil
	}
	rctx, cancel := s.request(ctx)
	defer cancel()
	_, err := s.c.Compact(rctx, erev, clientv3.WithCompactPhysical())
	if err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return s.mapErr(ctx, err)
	}
	return nil
}

// op is one buffered write.
type op struct {
	del bool
	val []byte
}

// writes is the state of a write transaction.
type writes struct {
	ops     map[string]*op
	bytes   int
	reads   map[string]int64 // key → mod revision read (0: missing)
	scanned bool
	// ranges are the key ranges the transaction's scans read.
	ranges []scanned
	// opaque is set when the transaction read something the keys and
	// ranges above do not describe: the change history (Changes), or a
	// read that failed with an error the function may have ignored. Such
	// a transaction is never rebased.
	opaque bool
}

// scanned is the key range one Scan read: the keys with prefix after
// after, up to and including stop when bounded (the key at which the
// function ended the scan), else to the end of the prefix.
type scanned struct {
	prefix, after, stop string
	bounded             bool
}

// touches reports whether a commit that wrote or deleted key changes
// what the transaction read.
func (w *writes) touches(key string) bool {
	if _, ok := w.reads[key]; ok {
		return true
	}
	for _, r := range w.ranges {
		if strings.HasPrefix(key, r.prefix) && key > r.after && (!r.bounded || key <= r.stop) {
			return true
		}
	}
	return false
}

// tx is a transaction at one etcd revision; w is nil in a View.
type tx struct {
	s    *Store
	ctx  context.Context
	rev  int64
	head int64 // the head key's mod revision at rev: the last commit
	w    *writes
}

func (t *tx) Revision() uint64 { return t.s.out(t.rev) }

// read returns key's value at the transaction's revision.
func (t *tx) read(key string) ([]byte, int64, error) {
	rctx, cancel := t.s.request(t.ctx)
	defer cancel()
	resp, err := t.s.c.Get(rctx, t.s.kvPrefix+key, clientv3.WithRev(t.rev))
	if err != nil {
		return nil, 0, t.s.mapErr(t.ctx, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, store.ErrNotFound
	}
	kv := resp.Kvs[0]
	p, err := bolt.Unseal([]byte(key), kv.Value)
	if err != nil {
		return nil, kv.ModRevision, &store.DamagedError{Key: key, Err: err}
	}
	return p, kv.ModRevision, nil
}

func (t *tx) Get(key string) ([]byte, uint64, error) {
	if t.w != nil {
		if o, ok := t.w.ops[key]; ok {
			if o.del {
				return nil, 0, store.ErrNotFound
			}
			return o.val, 0, nil
		}
	}
	v, rev, err := t.read(key)
	if t.w != nil {
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrCorrupt) {
			t.w.reads[key] = rev
		} else {
			t.w.opaque = true
		}
	}
	if err != nil {
		return nil, 0, err
	}
	return v, t.s.out(rev), nil
}

func (t *tx) Scan(prefix, startAfter string, fn func(key string, val []byte, rev uint64) (bool, error)) error {
	var pending []string // buffered writes in range, sorted
	if t.w != nil {
		t.w.scanned = true
		// The range read runs to the end of the prefix unless the
		// function ends the scan, at the key it was given last.
		i := len(t.w.ranges)
		t.w.ranges = append(t.w.ranges, scanned{prefix: prefix, after: startAfter})
		inner := fn
		fn = func(k string, v []byte, rev uint64) (bool, error) {
			more, err := inner(k, v, rev)
			if err == nil && !more {
				t.w.ranges[i].stop, t.w.ranges[i].bounded = k, true
			}
			return more, err
		}
		for k := range t.w.ops {
			if strings.HasPrefix(k, prefix) && k > startAfter {
				pending = append(pending, k)
			}
		}
		slices.Sort(pending)
	}
	// emitPending yields the buffered puts before key (all when key is
	// empty) and reports whether key itself is buffered.
	emitPending := func(key string, last bool) (buffered, more bool, err error) {
		for len(pending) > 0 && (last || pending[0] <= key) {
			k := pending[0]
			pending = pending[1:]
			if k == key && !last {
				buffered = true
			}
			if o := t.w.ops[k]; !o.del {
				more, err := fn(k, o.val, 0)
				if err != nil || !more {
					return buffered, false, err
				}
			}
		}
		return buffered, true, nil
	}
	from := t.s.kvPrefix + prefix
	if startAfter >= prefix {
		from = t.s.kvPrefix + startAfter + "\x00"
	}
	end := clientv3.GetPrefixRangeEnd(t.s.kvPrefix + prefix)
	for {
		rctx, cancel := t.s.request(t.ctx)
		resp, err := t.s.c.Get(rctx, from, clientv3.WithRange(end), clientv3.WithRev(t.rev),
			clientv3.WithLimit(scanPage), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		cancel()
		if err != nil {
			if t.w != nil {
				t.w.opaque = true
			}
			return t.s.mapErr(t.ctx, err)
		}
		for _, kv := range resp.Kvs {
			k := strings.TrimPrefix(string(kv.Key), t.s.kvPrefix)
			buffered, more, err := emitPending(k, false)
			if err != nil || !more {
				return err
			}
			if buffered {
				continue
			}
			p, err := bolt.Unseal([]byte(k), kv.Value)
			if err != nil {
				return &store.DamagedError{Key: k, Err: err}
			}
			if more, err := fn(k, p, t.s.out(kv.ModRevision)); err != nil || !more {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	_, _, err := emitPending("", true)
	return err
}

// Changes reads the history of the head key, which every commit writes
// with the keys it wrote, from etcd's watch.
func (t *tx) Changes(after uint64) ([]store.Change, error) {
	if t.w != nil {
		// What it returns ends at the transaction's head: it is not
		// valid at a later one.
		t.w.opaque = true
	}
	if after >= t.Revision() {
		return nil, nil
	}
	base := t.s.base.Load()
	if after < base {
		return nil, fmt.Errorf("%w: revision %d is before the prefix's revision base %d (its data was loaded from another store)", store.ErrCompacted, after, base)
	}
	after -= base
	// A read at after fails when etcd has compacted it away: the
	// history from there is incomplete. Revision 1 is etcd's first.
	probe := max(int64(after), 1)
	rctx, rcancel := t.s.request(t.ctx)
	_, err := t.s.c.Get(rctx, t.s.headKey, clientv3.WithRev(probe), clientv3.WithCountOnly())
	rcancel()
	if err != nil {
		return nil, t.s.mapErr(t.ctx, err)
	}
	if t.head <= int64(after) {
		return nil, nil
	}
	if out, ok := t.s.hist.since(t.ctx, int64(after), t.head); ok {
		for i := range out {
			out[i].Revision = t.s.out(int64(out[i].Revision))
		}
		return out, nil
	}
	// The watch ends when etcd sends nothing for a request timeout: a
	// watch whose etcd is gone waits, it does not fail.
	ctx, cancel := context.WithCancelCause(t.ctx)
	defer cancel(nil)
	idle := time.AfterFunc(t.s.reqTimeout, func() { cancel(errWatchIdle) })
	defer idle.Stop()
	var out []store.Change
	wch := t.s.c.Watch(ctx, t.s.headKey, clientv3.WithRev(int64(after)+1))
	for resp := range wch {
		idle.Reset(t.s.reqTimeout)
		if resp.CompactRevision > 0 {
			return nil, fmt.Errorf("%w: etcd compacted revision %d", store.ErrCompacted, resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			return nil, t.s.mapErr(t.ctx, err)
		}
		for _, ev := range resp.Events {
			r := ev.Kv.ModRevision
			if r > t.head {
				return out, nil
			}
			keys, err := decodeKeys(bolt.Unseal([]byte(t.s.headKey), ev.Kv.Value))
			if err != nil {
				return nil, &store.DamagedError{Key: t.s.headKey, Err: fmt.Errorf("the change record of revision %d: %w", r, err)}
			}
			out = append(out, store.Change{Revision: t.s.out(r), Keys: keys})
			if r == t.head {
				return out, nil
			}
		}
	}
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	if errors.Is(context.Cause(ctx), errWatchIdle) {
		return nil, fmt.Errorf("%w: etcd at %s sent nothing of the change history for %v", store.ErrUnavailable, t.s.eps, t.s.reqTimeout)
	}
	return nil, fmt.Errorf("etcd: the watch of the change history ended before revision %d", t.head)
}

// errWatchIdle ends a watch of the change history that etcd stopped
// feeding.
var errWatchIdle = errors.New("watch idle")

// errReadOnly is the error of a write in a View.
var errReadOnly = errors.New("write in a read-only transaction")

func (t *tx) Put(key string, val []byte) error {
	if t.w == nil {
		return errReadOnly
	}
	if key == "" {
		return errors.New("empty key")
	}
	w := t.w
	o, ok := w.ops[key]
	n := w.bytes + len(key) + len(val)
	if ok {
		n -= len(key) + len(o.val)
	} else if t.s.lim.MaxOps > 0 && len(w.ops) >= t.s.lim.MaxOps {
		return fmt.Errorf("%w: more than %d keys", store.ErrTooManyOps, t.s.lim.MaxOps)
	}
	if t.s.lim.MaxTxnBytes > 0 && n > t.s.lim.MaxTxnBytes {
		return fmt.Errorf("%w: more than %d bytes", store.ErrTxnTooLarge, t.s.lim.MaxTxnBytes)
	}
	w.bytes = n
	w.ops[key] = &op{val: slices.Clone(val)}
	if w.ops[key].val == nil {
		w.ops[key].val = []byte{}
	}
	return nil
}

func (t *tx) Delete(key string) error {
	if t.w == nil {
		return errReadOnly
	}
	w := t.w
	if o, ok := w.ops[key]; ok {
		if !o.del {
			w.bytes -= len(o.val)
			o.del, o.val = true, nil
		}
		return nil
	}
	if _, _, err := t.Get(key); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil && !errors.Is(err, store.ErrCorrupt) {
		return err
	}
	if t.s.lim.MaxOps > 0 && len(w.ops) >= t.s.lim.MaxOps {
		return fmt.Errorf("%w: more than %d keys", store.ErrTooManyOps, t.s.lim.MaxOps)
	}
	if t.s.lim.MaxTxnBytes > 0 && w.bytes+len(key) > t.s.lim.MaxTxnBytes {
		return fmt.Errorf("%w: more than %d bytes", store.ErrTxnTooLarge, t.s.lim.MaxTxnBytes)
	}
	w.bytes += len(key)
	w.ops[key] = &op{del: true}
	return nil
}

// encodeKeys and decodeKeys are the payload of the head record: a uvarint
// count, then each key as a uvarint length and its bytes.
func encodeKeys(keys []string) []byte {
	out := binary.AppendUvarint(nil, uint64(len(keys)))
	for _, k := range keys {
		out = binary.AppendUvarint(out, uint64(len(k)))
		out = append(out, k...)
	}
	return out
}

var errKeys = errors.New("bad key list")

func decodeKeys(p []byte, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	n, l := binary.Uvarint(p)
	if l <= 0 || n > uint64(len(p)) {
		return nil, errKeys
	}
	p = p[l:]
	keys := make([]string, 0, n)
	for range n {
		m, l := binary.Uvarint(p)
		if l <= 0 || m > uint64(len(p)-l) {
			return nil, errKeys
		}
		keys = append(keys, string(p[l:l+int(m)]))
		p = p[l+int(m):]
	}
	if len(p) != 0 {
		return nil, errKeys
	}
	return keys, nil
}

// Elector returns a leader elector on this store's cluster, campaigning
// under <prefix>leader/ with a lease of ttl; name identifies this replica.
func (s *Store) Elector(ttl time.Duration, name string, log *slog.Logger) leader.Elector {
	return leader.NewEtcd(s.c, s.prefix+"leader/", ttl, name, log)
}

// readBase reads the prefix's revision base at etcd revision rev (0 when
// it has none) and the mod revision of its key.
func (s *Store) readBase(ctx context.Context, rev int64) (base uint64, mod int64, err error) {
	resp, err := s.c.Get(ctx, s.baseKey, clientv3.WithRev(rev))
	if err != nil {
		return 0, 0, err
	}
	if len(resp.Kvs) == 0 {
		return 0, 0, nil
	}
	kv := resp.Kvs[0]
	p, err := bolt.Unseal([]byte(s.baseKey), kv.Value)
	if err == nil && len(p) != 8 {
		err = fmt.Errorf("%d-byte revision base", len(p))
	}
	if err != nil {
		return 0, 0, &store.DamagedError{Key: s.baseKey, Err: err}
	}
	return binary.BigEndian.Uint64(p), kv.ModRevision, nil
}

// RaiseRevision makes every revision of the store from now on larger than
// floor, by raising the prefix's revision base (never lowering it). A copy
// of a store at revision floor is loaded after it (gatehoused migrate), so
// that the revisions of later writes — and the audit and outbox ids, etags
// and min_revision values made from them — stay above those of the copied
// data, as they would have in the source. It is for a prefix no replica
// serves: a running replica keeps the base it read at Open.
func (s *Store) RaiseRevision(ctx context.Context, floor uint64) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.txns.Done()
	for {
		rctx, cancel := s.request(ctx)
		resp, err := s.c.Get(rctx, s.headKey)
		var base uint64
		var mod int64
		if err == nil {
			base, mod, err = s.readBase(rctx, resp.Header.Revision)
		}
		cancel()
		if err != nil {
			return s.mapErr(ctx, err)
		}
		now := resp.Header.Revision
		s.base.Store(base)
		s.observe(now)
		// The next commit is at etcd revision now+1 or later.
		if uint64(now)+base >= floor {
			return nil
		}
		nb := floor - uint64(now)
		val := bolt.Seal([]byte(s.baseKey), binary.BigEndian.AppendUint64(nil, nb))
		rctx, cancel = s.request(ctx)
		tr, err := s.c.Txn(rctx).If(clientv3.Compare(clientv3.ModRevision(s.baseKey), "=", mod)).
			Then(clientv3.OpPut(s.baseKey, string(val))).Commit()
		cancel()
		if err != nil {
			return s.mapErr(ctx, err)
		}
		if tr.Succeeded {
			s.base.Store(nb)
			s.observe(tr.Header.Revision)
			return nil
		}
	}
}
