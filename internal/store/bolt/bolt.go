// Package bolt is the embedded bbolt driver of internal/store: one file, one
// revision counter, schema version with migrations, fsync on every commit
// (bbolt's default, never turned off here).
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
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
const SchemaVersion = 2

// maxPlausibleSchema bounds the schema versions a sealed schema record may
// name; a larger one is damage, not a newer binary's file.
const maxPlausibleSchema = 1 << 10

// FileName is the name of the database file inside the data directory.
const FileName = "gatehouse.db"

var (
	metaBucket    = []byte("meta")
	kvBucket      = []byte("kv")
	keySchema     = []byte("schema_version")
	keyRevision   = []byte("revision")
	changeHistory = 4096
)

// Migration upgrades a store from one schema version to the next inside
// the open-time transaction. migrations[v] upgrades version v to v+1.
type Migration func(tx *bbolt.Tx) error

// migrations holds the upgrade steps.
var migrations = map[int]Migration{
	1: sealRecords,
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

	mu      sync.Mutex
	changes []store.Change
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
	return open(dir, migrations, SchemaVersion, o)
}

func openWith(dir string, migs map[int]Migration, version int) (*Store, error) {
	return open(dir, migs, version, Options{})
}

func open(dir string, migs map[int]Migration, version int, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
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
	s := &Store{db: *db, subs: map[int]chan struct{}{}, fallback: fallback}
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
		return fn(&tx{b: btx.Bucket(kvBucket), rev: rev})
	}))
}

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
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	cur := s.rev.Load()
	t := &tx{rev: cur + 1, writable: true}
	recorded := false
	err := s.db.Update(func(btx *bbolt.Tx) error {
		t.b = btx.Bucket(kvBucket)
		if err := fn(t); err != nil {
			return err
		}
		if len(t.keys) == 0 {
			return nil
		}
		if err := btx.Bucket(metaBucket).Put(keyRevision, sealU64(keyRevision, t.rev)); err != nil {
			return err
		}
		// The change is recorded before the commit becomes visible, so a
		// reader that sees revision N in a transaction always finds the
		// change of N in Changes. Readers filter out changes newer than
		// their transaction, and a failed commit removes its record.
		s.record(store.Change{Revision: t.rev, Keys: t.keys})
		recorded = true
		return nil
	})
	if err != nil {
		if recorded {
			s.unrecord()
		}
		return 0, noSpaceErr(closedErr(err))
	}
	if len(t.keys) == 0 {
		return cur, nil
	}
	s.rev.Store(t.rev)
	s.notify()
	return t.rev, nil
}

func (s *Store) record(c store.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.changes) == changeHistory {
		s.changes = append(s.changes[:0], s.changes[1:]...)
	}
	s.changes = append(s.changes, c)
}

func (s *Store) unrecord() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes = s.changes[:len(s.changes)-1]
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

// Changes implements store.Store. The driver keeps the last few thousand
// commits of this process; older ones (and those before Open) are
// ErrCompacted. Inside a View, the result covers every commit up to the
// transaction's revision and may hold later ones, which the caller skips.
func (s *Store) Changes(rev uint64) ([]store.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.rev.Load()
	if n := len(s.changes); n > 0 {
		last = max(last, s.changes[n-1].Revision)
	}
	if rev >= last {
		return nil, nil
	}
	if len(s.changes) == 0 || s.changes[0].Revision > rev+1 {
		return nil, store.ErrCompacted
	}
	i := int(rev + 1 - s.changes[0].Revision)
	out := make([]store.Change, len(s.changes)-i)
	for j, c := range s.changes[i:] {
		out[j] = store.Change{Revision: c.Revision, Keys: append([]string(nil), c.Keys...)}
	}
	return out, nil
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
	rev      uint64
	writable bool
	keys     []string
	touched  map[string]struct{}
}

func (t *tx) Revision() uint64 { return t.rev }

func (t *tx) Get(key string) ([]byte, error) {
	v, ok := t.lookup(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	p, err := unseal([]byte(key), v)
	if err != nil {
		return nil, &store.DamagedError{Key: key, Err: err}
	}
	return p, nil
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

func (t *tx) Scan(prefix, startAfter string, fn func(string, []byte) (bool, error)) error {
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
		payload, err := unseal(k, v)
		if err != nil {
			return &store.DamagedError{Key: string(k), Err: err}
		}
		more, err := fn(string(k), payload)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *tx) touch(key string) {
	if t.touched == nil {
		t.touched = map[string]struct{}{}
	}
	if _, ok := t.touched[key]; !ok {
		t.touched[key] = struct{}{}
		t.keys = append(t.keys, key)
	}
}

func (t *tx) Put(key string, val []byte) error {
	if key == "" {
		return errors.New("empty key")
	}
	// bbolt keeps a reference to the value until the commit; seal copies
	// val, so the caller may reuse its buffer as soon as Put returns.
	if err := t.b.Put([]byte(key), seal([]byte(key), val)); err != nil {
		return err
	}
	t.touch(key)
	return nil
}

func (t *tx) Delete(key string) error {
	if _, ok := t.lookup(key); !ok {
		return nil
	}
	if err := t.b.Delete([]byte(key)); err != nil {
		return err
	}
	t.touch(key)
	return nil
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
