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
const SchemaVersion = 1

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

// migrations holds the upgrade steps; empty while SchemaVersion is 1.
var migrations = map[int]Migration{}

// Store is a bbolt-backed store.Store.
type Store struct {
	db  *bbolt.DB
	wmu sync.Mutex // orders commits with their change records
	rev atomic.Uint64

	mu      sync.Mutex
	changes []store.Change
	subs    map[int]chan struct{}
	nextSub int
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir. It refuses files with a
// newer schema version (store.ErrSchemaTooNew) and files bbolt cannot read
// (store.ErrCorrupt), and runs migrations for older ones.
func Open(dir string) (*Store, error) {
	return openWith(dir, migrations, SchemaVersion)
}

func openWith(dir string, migs map[int]Migration, version int) (s *Store, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// bbolt panics on some kinds of damage it finds while reading pages;
	// a damaged file must stop start-up with a clear error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, path, r)
		}
	}()
	if err := preflight(path); err != nil {
		if pathError(err) {
			// The file could not be read (permissions, a directory in
			// its place, an I/O error): not damage, and the error
			// already names the operation and the file.
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %w", store.ErrCorrupt, path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("open %s: locked by another process", path)
		case pathError(err):
			return nil, err // "open <path>: permission denied"
		}
		// Everything else bbolt reports at open (bad magic, checksum,
		// version, "file size too small", …) is a damaged file.
		return nil, fmt.Errorf("%w: %s: %w", store.ErrCorrupt, path, err)
	}
	s = &Store{db: db, subs: map[int]chan struct{}{}}
	if err := s.verify(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: %s: %w", store.ErrCorrupt, path, err)
	}
	if err := s.init(migs, version); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
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
			if len(raw) != 8 {
				return fmt.Errorf("%w: bad schema version record", store.ErrCorrupt)
			}
			v = int(binary.BigEndian.Uint64(raw))
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
		if err := meta.Put(keySchema, u64(uint64(version))); err != nil {
			return err
		}
		if raw := meta.Get(keyRevision); raw != nil {
			if len(raw) != 8 {
				return fmt.Errorf("%w: bad revision record", store.ErrCorrupt)
			}
			s.rev.Store(binary.BigEndian.Uint64(raw))
		}
		return nil
	})
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
		t := &tx{b: btx.Bucket(kvBucket)}
		if raw := btx.Bucket(metaBucket).Get(keyRevision); len(raw) == 8 {
			t.rev = binary.BigEndian.Uint64(raw)
		}
		return fn(t)
	}))
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
		if err := btx.Bucket(metaBucket).Put(keyRevision, u64(t.rev)); err != nil {
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
	return v, nil
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
		more, err := fn(string(k), v)
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
	// bbolt keeps a reference to val until the commit; the caller may
	// reuse its buffer as soon as Put returns.
	if err := t.b.Put([]byte(key), append([]byte{}, val...)); err != nil {
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
		var rev uint64
		if raw := btx.Bucket(metaBucket).Get(keyRevision); len(raw) == 8 {
			rev = binary.BigEndian.Uint64(raw)
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
