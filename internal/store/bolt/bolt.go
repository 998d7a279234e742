// Package bolt is the embedded bbolt driver of internal/store: one file, one
// revision counter, schema version with migrations, fsync on every commit
// (bbolt's default, never turned off here).
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the version of the key layout this binary writes.
//
//	1  JSON records as written
//	2  every value sealed in a checksummed envelope (record.go)
//	3  kv values carry their mod revision in the envelope; a persisted,
//	   bounded change log (bucket "changes")
const SchemaVersion = 3

// maxPlausibleSchema bounds the schema versions a sealed schema record may
// name; a larger one is damage, not a newer binary's file.
const maxPlausibleSchema = 1 << 10

// FileName is the name of the database file inside the data directory.
const FileName = "gatehouse.db"

var (
	metaBucket    = []byte("meta")
	kvBucket      = []byte("kv")
	changesBucket = []byte("changes")
	keySchema     = []byte("schema_version")
	keyRevision   = []byte("revision")
)

// DefaultChangeHistory is how many commits the change log keeps by
// default: a follower further behind than that reloads everything.
const DefaultChangeHistory = 4096

// maxLoggedKeys bounds the keys the change log records for one commit. A
// larger commit (a bulk load; never one within etcd's limits) is logged
// without its keys, and Changes across it is store.ErrCompacted: a
// follower reloads everything, as it would rebuild most of it anyway.
const maxLoggedKeys = 1024

// Migration upgrades a store from one schema version to the next inside
// the open-time transaction. migrations[v] upgrades version v to v+1.
type Migration func(tx *bbolt.Tx) error

// migrations holds the upgrade steps.
var migrations = map[int]Migration{
	1: sealRecords,
	2: addRevisions,
}

// Store is a bbolt-backed store.Store.
type Store struct {
	db  *bbolt.DB
	wmu sync.Mutex // orders commits with their change records
	rev atomic.Uint64

	// damaged and damagedCount describe the records that failed their
	// checksum at open; set before Open returns, read-only after.
	damaged      []*store.DamagedError
	damagedCount int
	// fallback is set when the store was opened from its older meta page.
	fallback *MetaFallback

	opts Options

	mu      sync.Mutex
	subs    map[int]chan struct{}
	nextSub int
}

var _ store.Store = (*Store)(nil)

// Options change how Open treats a damaged file.
type Options struct {
	// AcceptMetaRollback opens a file whose newest meta page is damaged
	// from the other one, as bbolt does, instead of refusing it with
	// store.ErrMetaRollback. The last commit may be lost; MetaFallback
	// then describes what happened.
	AcceptMetaRollback bool
	// Limits bounds every write transaction as store.Limits says (zero:
	// no bound, the default). Setting etcd's defaults makes the daemon
	// and its tests fail where they would on etcd.
	Limits store.Limits
	// ChangeHistory is how many commits the change log keeps
	// (DefaultChangeHistory when 0).
	ChangeHistory int
	// RetryUpdates runs every Update's function this many extra times
	// first, rolling each run back, as a driver with optimistic
	// concurrency does on a conflict: for tests that check that writes
	// are pure functions of what they read.
	RetryUpdates int
}

// Open opens (creating if needed) the store in dir. It refuses files with a
// newer schema version (store.ErrSchemaTooNew), files bbolt cannot read
// (store.ErrCorrupt) and files with one damaged meta page
// (store.ErrMetaRollback), and runs migrations for older ones.
func Open(dir string) (*Store, error) {
	return OpenWith(dir, Options{})
}

// OpenWith is Open with options.
func OpenWith(dir string, o Options) (*Store, error) {
	return open(filepath.Join(dir, FileName), migrations, SchemaVersion, o)
}

// OpenFile is OpenWith for a store file of any name (a backup, a copy),
// creating it and its directory when missing.
func OpenFile(path string, o Options) (*Store, error) {
	return open(path, migrations, SchemaVersion, o)
}

func openWith(dir string, migs map[int]Migration, version int) (*Store, error) {
	return open(filepath.Join(dir, FileName), migs, version, Options{})
}

// errRetry rolls back a run of Update's function that Options.RetryUpdates
// asked for.
var errRetry = errors.New("forced retry")

func open(path string, migs map[int]Migration, version int, o Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// Opening reads the whole file through bbolt's memory map. bbolt
	// panics on some kinds of damage, and a damaged pointer the checks
	// below miss would make it read outside the mapping: a fault that
	// kills the process. Both must stop start-up with a clear error, so
	// the open runs in a goroutine of its own that turns faults into
	// panics (debug.SetPanicOnFault is per goroutine) and recovers.
	type result struct {
		s   *Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		debug.SetPanicOnFault(true)
		var db *bbolt.DB
		defer func() {
			if r := recover(); r != nil {
				if db != nil {
					_ = db.Close()
				}
				done <- result{nil, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, path, r)}
			}
		}()
		s, err := openFile(path, migs, version, o, &db)
		done <- result{s, err}
	}()
	r := <-done
	return r.s, r.err
}

// openFile opens the file at path; *db is the bbolt handle as soon as
// there is one, so that a recovered fault can close it.
func openFile(path string, migs map[int]Migration, version int, o Options, db **bbolt.DB) (*Store, error) {
	_, fallback, err := checkFile(path)
	if err != nil {
		return nil, err
	}
	if fallback != nil && !o.AcceptMetaRollback {
		return nil, &MetaRollbackError{Path: path, Fallback: *fallback}
	}
	*db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, lockedError(path)
		case pathError(err):
			return nil, err // "open <path>: permission denied"
		}
		// Everything else bbolt reports at open (bad magic, checksum,
		// version, "file size too small", …) is a damaged file.
		return nil, fmt.Errorf("%w: %s: %w", store.ErrCorrupt, path, err)
	}
	if o.ChangeHistory <= 0 {
		o.ChangeHistory = DefaultChangeHistory
	}
	s := &Store{db: *db, subs: map[int]chan struct{}{}, fallback: fallback, opts: o}
	if err := s.verify(); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("%w: %s: %w", store.ErrCorrupt, path, err)
	}
	if err := s.init(migs, version); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.checkRecords(); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// maxDamagedListed bounds the damaged records Open remembers by key.
const maxDamagedListed = 100

// checkRecords verifies the checksum of every stored value once at open, so
// that damage in records no start-up reader decodes (audit events, queued
// notifications, indexes) is reported at start-up too. A damaged record
// does not stop the store: reading it reports the damage, and the snapshot
// leaves its account out.
func (s *Store) checkRecords() error {
	return s.db.View(func(btx *bbolt.Tx) error {
		return btx.Bucket(kvBucket).ForEach(func(k, v []byte) error {
			if _, err := unseal(k, v); err != nil {
				s.damagedCount++
				if len(s.damaged) < maxDamagedListed {
					s.damaged = append(s.damaged, &store.DamagedError{Key: string(k), Err: err})
				}
			}
			return nil
		})
	})
}

// MetaFallback returns what Open accepted when one meta page was damaged
// (Options.AcceptMetaRollback), or nil. The first commit after Open
// rewrites the damaged page.
func (s *Store) MetaFallback() *MetaFallback { return s.fallback }

// StartupDamage reports what Open found damaged but opened anyway, for
// metrics: whether it fell back to the older meta page, and how many
// records failed their checksum.
func (s *Store) StartupDamage() (metaFallback bool, damagedRecords int) {
	return s.fallback != nil, s.damagedCount
}

// DamagedRecords returns the records whose checksum failed when the store
// was opened (at most the first 100) and how many there were in all.
func (s *Store) DamagedRecords() ([]*store.DamagedError, int) {
	return s.damaged, s.damagedCount
}

func (s *Store) init(migs map[int]Migration, version int) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		kv, err := tx.CreateBucketIfNotExists(kvBucket)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(changesBucket); err != nil {
			return err
		}
		v := version
		if raw := meta.Get(keySchema); raw != nil {
			var err error
			if v, err = schemaOf(raw); err != nil {
				return err
			}
		} else if k, _ := kv.Cursor().First(); k != nil {
			return fmt.Errorf("%w: data without a schema version", store.ErrCorrupt)
		}
		if v > version {
			return fmt.Errorf("%w: file has schema %d, this binary supports up to %d", store.ErrSchemaTooNew, v, version)
		}
		for ; v < version; v++ {
			m, ok := migs[v]
			if !ok {
				return fmt.Errorf("no migration from schema %d to %d", v, v+1)
			}
			if err := m(tx); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		if err := meta.Put(keySchema, sealU64(keySchema, uint64(version))); err != nil {
			return err
		}
		if raw := meta.Get(keyRevision); raw != nil {
			rev, err := unsealU64(keyRevision, raw)
			if err != nil {
				return &store.DamagedError{Key: "meta/" + string(keyRevision), Err: err}
			}
			s.rev.Store(rev)
		}
		return nil
	})
}

// schemaOf reads the schema record. Schema 1 stored it as 8 bare bytes;
// every later schema seals it. A record that fails its checksum, or names
// an implausible version, is damage.
func schemaOf(raw []byte) (int, error) {
	const what = "meta/schema_version"
	if len(raw) == 8 {
		// Only schema 1 wrote a bare record, so any other value in one is
		// a damaged 1.
		if v := binary.BigEndian.Uint64(raw); v != 1 {
			return 0, &store.DamagedError{Key: what, Err: fmt.Errorf("unsealed schema record holds %d; only schema 1 wrote unsealed records", v)}
		}
		return 1, nil
	}
	v, err := unsealU64(keySchema, raw)
	if err != nil {
		return 0, &store.DamagedError{Key: what, Err: err}
	}
	if v < 1 || v > maxPlausibleSchema {
		return 0, &store.DamagedError{Key: what, Err: fmt.Errorf("implausible schema version %d", v)}
	}
	return int(v), nil
}

// sealRecords upgrades schema 1 to 2: it seals every value of the kv
// bucket and the revision record in a checksummed envelope, unchanged
// otherwise. It works in batches so that the cursor is repositioned after
// every write.
func sealRecords(tx *bbolt.Tx) error {
	kv, meta := tx.Bucket(kvBucket), tx.Bucket(metaBucket)
	if raw := meta.Get(keyRevision); raw != nil {
		if len(raw) != 8 {
			return &store.DamagedError{Key: "meta/" + string(keyRevision), Err: fmt.Errorf("%d-byte revision record", len(raw))}
		}
		if err := meta.Put(keyRevision, seal(keyRevision, raw)); err != nil {
			return err
		}
	}
	const batch = 1024
	var after []byte
	for {
		type kvPair struct{ k, v []byte }
		var pairs []kvPair
		c := kv.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(pairs) < batch; k, v = c.Next() {
			if v == nil && kv.Bucket(k) != nil {
				return fmt.Errorf("unexpected nested bucket %q", k)
			}
			pairs = append(pairs, kvPair{bytes.Clone(k), seal(k, v)})
		}
		if len(pairs) == 0 {
			return nil
		}
		for _, p := range pairs {
			if err := kv.Put(p.k, p.v); err != nil {
				return err
			}
		}
		after = pairs[len(pairs)-1].k
	}
}

// addRevisions upgrades schema 2 to 3: every kv value is sealed again with
// its mod revision. Records of earlier schemas held the revision that last
// wrote them in their "revision" field, which becomes their mod revision
// (so that etags stay what they were); records without one (indexes, the
// outbox) get the store's revision. The change log starts empty: Changes
// of earlier commits is store.ErrCompacted.
func addRevisions(tx *bbolt.Tx) error {
	kv, meta := tx.Bucket(kvBucket), tx.Bucket(metaBucket)
	var cur uint64
	if raw := meta.Get(keyRevision); raw != nil {
		var err error
		if cur, err = unsealU64(keyRevision, raw); err != nil {
			return &store.DamagedError{Key: "meta/" + string(keyRevision), Err: err}
		}
	}
	type kvPair struct{ k, v []byte }
	var pairs []kvPair
	err := kv.ForEach(func(k, v []byte) error {
		p, err := unseal(k, v)
		if err != nil {
			// A damaged value stays as it is: reading it reports it.
			return nil
		}
		rev := cur
		var r struct {
			Revision uint64 `json:"revision"`
		}
		if json.Unmarshal(p, &r) == nil && r.Revision > 0 && r.Revision <= cur {
			rev = r.Revision
		}
		pairs = append(pairs, kvPair{bytes.Clone(k), sealAt(k, p, rev)})
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range pairs {
		if err := kv.Put(p.k, p.v); err != nil {
			return err
		}
	}
	return nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// Path returns the path of the database file.
func (s *Store) Path() string { return s.db.Path() }

// Revision implements store.Store.
func (s *Store) Revision() uint64 { return s.rev.Load() }

// View implements store.Store.
func (s *Store) View(ctx context.Context, fn func(store.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return closedErr(s.db.View(func(btx *bbolt.Tx) error {
		rev, err := readRevision(btx)
		if err != nil {
			return err
		}
		return fn(&tx{b: btx.Bucket(kvBucket), changes: btx.Bucket(changesBucket), rev: rev})
	}))
}

// Limits implements store.Store.
func (s *Store) Limits() store.Limits { return s.opts.Limits }

// readRevision returns the revision record of btx (0 in a new store).
func readRevision(btx *bbolt.Tx) (uint64, error) {
	raw := btx.Bucket(metaBucket).Get(keyRevision)
	if raw == nil {
		return 0, nil
	}
	rev, err := unsealU64(keyRevision, raw)
	if err != nil {
		return 0, &store.DamagedError{Key: "meta/" + string(keyRevision), Err: err}
	}
	return rev, nil
}

// noSpaceErr marks an out-of-space failure as store.ErrNoSpace. bbolt
// formats the underlying error into its own ("file resize error: …: file
// too large"), so the errno is matched by its text as well.
func noSpaceErr(err error) error {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EFBIG, syscall.EDQUOT} {
		if errors.Is(err, errno) || strings.Contains(err.Error(), errno.Error()) {
			return fmt.Errorf("%w: %v", store.ErrNoSpace, err)
		}
	}
	return err
}

// closedErr maps bbolt's "database not open" to store.ErrClosed.
func closedErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}

// Update implements store.Store. Commits are fsynced before it returns.
// Writers are serialized, so fn runs once (unless Options.RetryUpdates
// asks for more runs).
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := store.CheckFence(ctx); err != nil {
		return 0, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for range s.opts.RetryUpdates {
		err := s.db.Update(func(btx *bbolt.Tx) error {
			if err := fn(s.newTx(btx)); err != nil {
				return err
			}
			return errRetry
		})
		if !errors.Is(err, errRetry) {
			return 0, noSpaceErr(closedErr(err))
		}
	}
	var t *tx
	err := s.db.Update(func(btx *bbolt.Tx) error {
		t = s.newTx(btx)
		if err := fn(t); err != nil {
			return err
		}
		if len(t.keys) == 0 {
			return nil
		}
		// The one writer holds the write lock: a fence still held now
		// is held at the commit.
		if err := store.CheckFence(ctx); err != nil {
			return err
		}
		if err := btx.Bucket(metaBucket).Put(keyRevision, sealU64(keyRevision, t.commit)); err != nil {
			return err
		}
		// The change is logged in the commit itself, so a reader that
		// sees revision N always finds the change of N in Changes.
		return s.logChange(btx, store.Change{Revision: t.commit, Keys: t.keys})
	})
	if err != nil {
		return 0, noSpaceErr(closedErr(err))
	}
	if len(t.keys) == 0 {
		return t.rev, nil
	}
	s.rev.Store(t.commit)
	s.notify()
	return t.commit, nil
}

// newTx starts a write transaction over btx. Writers are serialized, so
// the commit's revision is the next one; the driver seals it into every
// value the transaction writes (nothing outside the driver sees it before
// Update returns).
func (s *Store) newTx(btx *bbolt.Tx) *tx {
	cur := s.rev.Load()
	return &tx{b: btx.Bucket(kvBucket), changes: btx.Bucket(changesBucket), rev: cur, commit: cur + 1, writable: true, lim: s.opts.Limits}
}

// logChange appends c to the change log and drops the entries beyond the
// history the store keeps.
func (s *Store) logChange(btx *bbolt.Tx, c store.Change) error {
	cb := btx.Bucket(changesBucket)
	k := u64(c.Revision)
	keys := c.Keys
	if len(keys) > maxLoggedKeys {
		keys = nil // stored as null: "too many to list"
	}
	v, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	if err := cb.Put(k, seal(k, v)); err != nil {
		return err
	}
	keep := uint64(s.opts.ChangeHistory)
	cur := cb.Cursor()
	for first, _ := cur.First(); first != nil && binary.BigEndian.Uint64(first)+keep <= c.Revision; first, _ = cur.First() {
		if err := cur.Delete(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Changes implements store.ReadTx from the persisted change log, which
// keeps the last Options.ChangeHistory commits (across restarts); older
// ones, those compacted and those before the store had a change log
// (schema 3) are store.ErrCompacted.
func (t *tx) Changes(after uint64) ([]store.Change, error) {
	if after >= t.rev {
		return nil, nil
	}
	c := t.changes.Cursor()
	k, _ := c.First()
	if k == nil || binary.BigEndian.Uint64(k) > after+1 {
		return nil, store.ErrCompacted
	}
	var out []store.Change
	for k, v := c.Seek(u64(after + 1)); k != nil && binary.BigEndian.Uint64(k) <= t.rev; k, v = c.Next() {
		rev := binary.BigEndian.Uint64(k)
		p, err := unseal(k, v)
		if err != nil {
			return nil, &store.DamagedError{Key: fmt.Sprintf("changes/%d", rev), Err: err}
		}
		ch := store.Change{Revision: rev}
		if err := json.Unmarshal(p, &ch.Keys); err != nil {
			return nil, &store.DamagedError{Key: fmt.Sprintf("changes/%d", rev), Err: err}
		}
		if ch.Keys == nil {
			return nil, fmt.Errorf("%w: commit %d wrote more keys than the change log lists", store.ErrCompacted, rev)
		}
		out = append(out, ch)
	}
	return out, nil
}

// Compact implements store.Compactor: it drops the change log's entries
// up to rev.
func (s *Store) Compact(ctx context.Context, rev uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return closedErr(s.db.Update(func(btx *bbolt.Tx) error {
		c := btx.Bucket(changesBucket).Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= rev; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	}))
}

// Subscribe implements store.Store.
func (s *Store) Subscribe() (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextSub
	s.nextSub++
	ch := make(chan struct{}, 1)
	s.subs[id] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, id)
	}
}

// Close implements store.Store; it waits for open transactions.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.db.Close()
}

// tx adapts a bbolt bucket to store.Tx and records the keys it touches.
type tx struct {
	b        *bbolt.Bucket
	changes  *bbolt.Bucket
	rev      uint64 // the revision reads see
	commit   uint64 // write transactions: the revision of their commit
	writable bool
	lim      store.Limits
	bytes    int
	keys     []string
	touched  map[string]struct{}
}

func (t *tx) Revision() uint64 { return t.rev }

func (t *tx) Get(key string) ([]byte, uint64, error) {
	v, ok := t.lookup(key)
	if !ok {
		return nil, 0, store.ErrNotFound
	}
	p, rev, err := unsealRev([]byte(key), v)
	if err != nil {
		return nil, 0, &store.DamagedError{Key: key, Err: err}
	}
	return p, t.modRev(key, rev), nil
}

// modRev hides the revision of a value this transaction wrote: the
// contract knows it only after the commit.
func (t *tx) modRev(key string, rev uint64) uint64 {
	if _, ok := t.touched[key]; ok {
		return 0
	}
	return rev
}

// lookup finds key with a cursor: bbolt's Bucket.Get answers nil both for a
// missing key and for an empty value, which are different here.
func (t *tx) lookup(key string) ([]byte, bool) {
	k, v := t.b.Cursor().Seek([]byte(key))
	if k == nil || string(k) != key {
		return nil, false
	}
	if v == nil {
		v = []byte{}
	}
	return v, true
}

func (t *tx) Scan(prefix, startAfter string, fn func(string, []byte, uint64) (bool, error)) error {
	c := t.b.Cursor()
	p := []byte(prefix)
	var k, v []byte
	if startAfter != "" && startAfter >= prefix {
		k, v = c.Seek([]byte(startAfter))
		if k != nil && string(k) == startAfter {
			k, v = c.Next()
		}
	} else {
		k, v = c.Seek(p)
	}
	for ; k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		payload, rev, err := unsealRev(k, v)
		if err != nil {
			return &store.DamagedError{Key: string(k), Err: err}
		}
		key := string(k)
		more, err := fn(key, payload, t.modRev(key, rev))
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// touch records a write of key of n bytes, within the limits.
func (t *tx) touch(key string, n int) error {
	if t.touched == nil {
		t.touched = map[string]struct{}{}
	}
	_, seen := t.touched[key]
	if !seen && t.lim.MaxOps > 0 && len(t.keys) == t.lim.MaxOps {
		return fmt.Errorf("%w: more than %d keys", store.ErrTooManyOps, t.lim.MaxOps)
	}
	if t.lim.MaxTxnBytes > 0 && t.bytes+n > t.lim.MaxTxnBytes {
		return fmt.Errorf("%w: more than %d bytes", store.ErrTxnTooLarge, t.lim.MaxTxnBytes)
	}
	t.bytes += n
	if !seen {
		t.touched[key] = struct{}{}
		t.keys = append(t.keys, key)
	}
	return nil
}

func (t *tx) Put(key string, val []byte) error {
	if key == "" {
		return errors.New("empty key")
	}
	if err := t.touch(key, len(key)+len(val)); err != nil {
		return err
	}
	// bbolt keeps a reference to the value until the commit; sealAt
	// copies val, so the caller may reuse its buffer as soon as Put
	// returns.
	return t.b.Put([]byte(key), sealAt([]byte(key), val, t.commit))
}

func (t *tx) Delete(key string) error {
	if _, ok := t.lookup(key); !ok {
		return nil
	}
	if err := t.touch(key, len(key)); err != nil {
		return err
	}
	return t.b.Delete([]byte(key))
}

// Backup writes a consistent copy of the database file, taken in one read
// transaction while writers keep committing, to the writer open returns
// for the copy's revision and size. It implements store.Backuper.
func (s *Store) Backup(ctx context.Context, open func(rev uint64, size int64) (io.Writer, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return closedErr(s.db.View(func(btx *bbolt.Tx) error {
		rev, err := readRevision(btx)
		if err != nil {
			return err
		}
		w, err := open(rev, btx.Size())
		if err != nil {
			return err
		}
		_, err = btx.WriteTo(w)
		return err
	}))
}

// Size returns the size of the database file.
func (s *Store) Size() (int64, error) {
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// pathError reports whether err is a file system error, which names its
// operation and file itself (*fs.PathError: "open /x/gatehouse.db:
// permission denied").
func pathError(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe)
}
