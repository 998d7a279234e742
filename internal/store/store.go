// Package store defines how Gatehouse persists its state: a small
// transactional key-value interface (Store, Tx) that the embedded bbolt
// and etcd drivers (internal/store/bolt, internal/store/etcd) implement, plus the
// key layout and typed record helpers shared by every driver.
//
// Every committed write gets one store revision, known when it commits.
// Drivers keep a history of commits (Changes) so that the decision snapshot
// can follow the store. The contract every driver honours is on Store.
// The package may import internal/policy (the record types) but never gRPC or
// the generated API code.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Sentinel errors returned by drivers and the typed helpers.
var (
	// ErrNotFound: the key or record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrCompacted: Changes was asked for changes the driver no longer keeps;
	// the caller must reload everything.
	ErrCompacted = errors.New("changes compacted")
	// ErrSchemaTooNew: the store was written by a newer schema version.
	ErrSchemaTooNew = errors.New("store schema is newer than this binary supports")
	// ErrCorrupt: the store file or a record in it cannot be read.
	ErrCorrupt = errors.New("store is corrupt")
	// ErrMetaRollback: one of the file's two meta pages (commit records)
	// is damaged, so opening it would fall back to the other one and may
	// lose the last acknowledged commit. It comes wrapped with ErrCorrupt.
	ErrMetaRollback = errors.New("a meta page is damaged: opening would roll back to the other one")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store is closed")
	// ErrNoSpace: the commit failed because the disk (or the file size
	// limit) is full; nothing was written.
	ErrNoSpace = errors.New("store is out of space")
	// ErrTooManyOps: a transaction wrote more keys than the driver's
	// Limits().MaxOps; nothing was written.
	ErrTooManyOps = errors.New("too many writes in one transaction")
	// ErrTxnTooLarge: a transaction wrote more bytes than the driver's
	// Limits().MaxTxnBytes; nothing was written.
	ErrTxnTooLarge = errors.New("transaction too large")
)

// DamagedError is the error of a stored record that fails its integrity
// check (a checksum the driver verifies at every read, or strict decoding):
// its bytes are not what was written under its key. It matches ErrCorrupt.
type DamagedError struct {
	// Key is the key of the damaged record.
	Key string
	// Err says what is wrong with it.
	Err error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%v: record %q: %v", ErrCorrupt, e.Key, e.Err)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *DamagedError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// Store is a transactional key-value store with a monotonically increasing
// revision. Keys are UTF-8 strings ordered bytewise. The contract below is
// what every driver promises and what internal/store/storetest checks; it
// is written so that a store built on etcd can honour it as well as the
// embedded bbolt file:
//
//   - Every commit that writes something gets one store revision, larger
//     than every revision before it. Revisions need not be contiguous.
//   - The revision of a write is known only after its commit: Update
//     returns it. Nothing inside a write transaction knows it.
//   - Every stored value carries its mod revision: the revision of the
//     commit that last wrote it, reported by Get and Scan. Etags and the
//     revision fields of records come from it.
//   - Update's function may run more than once: a driver with optimistic
//     concurrency runs it again when what it read changed before its
//     commit. It must be a pure function of what it reads: no side effect
//     outside the transaction that a second run would repeat, ids derived
//     from what it reads or made before Update, results assigned (never
//     accumulated) into captured variables.
//   - A transaction writes at most Limits().MaxOps keys and
//     Limits().MaxTxnBytes bytes; beyond them Put and Delete fail with
//     ErrTooManyOps or ErrTxnTooLarge and nothing is committed. Callers
//     that write more split the work (see DeleteAccount).
//   - An Update whose context carries a Fence (WithFence) commits only
//     while the fence's term of leadership lasts; otherwise it fails with
//     ErrFenced and nothing is committed (see Fence). A driver several
//     processes share checks the term in the commit itself.
//   - ReadTx.Changes returns the keys of the commits after a revision, from
//     a history the driver keeps across restarts and may compact; a
//     revision older than that history is answered with ErrCompacted, and
//     the caller reloads everything.
type Store interface {
	// View runs fn in a consistent read-only transaction.
	View(ctx context.Context, fn func(ReadTx) error) error
	// Update runs fn in a read-write transaction and commits it (durably)
	// when fn returns nil; any error rolls everything back. It returns the
	// store revision of the commit, or the current revision when fn wrote
	// nothing. An error means nothing was committed. fn may be run more
	// than once (see above); only the last run's writes are committed.
	Update(ctx context.Context, fn func(Tx) error) (uint64, error)
	// Revision returns the revision of the last commit the store knows of.
	Revision() uint64
	// Subscribe returns a channel that receives a value (coalesced) after
	// every commit, and a function that ends the subscription.
	Subscribe() (<-chan struct{}, func())
	// Limits returns the bounds of one write transaction.
	Limits() Limits
	// Close releases the store. Transactions in flight finish first.
	Close() error
}

// Limits are the bounds a driver puts on one write transaction. Zero means
// no bound.
type Limits struct {
	// MaxOps bounds the keys one transaction writes or deletes (etcd's
	// --max-txn-ops, 128 by default).
	MaxOps int
	// MaxTxnBytes bounds the bytes of keys and values one transaction
	// writes (etcd's --max-request-bytes, 1.5 MiB by default).
	MaxTxnBytes int
}

// Compactor is implemented by drivers whose change history can be
// compacted on demand (etcd's Compact; the bbolt driver's change log).
type Compactor interface {
	// Compact forgets the changes of revisions up to rev: ReadTx.Changes
	// with after < rev returns ErrCompacted from then on.
	Compact(ctx context.Context, rev uint64) error
}

// ReadTx reads a consistent view of the store.
type ReadTx interface {
	// Revision is the store revision the transaction reads at. In a
	// write transaction it is the revision its reads see, not the
	// revision its commit will have (which is later, and known only when
	// Update returns).
	Revision() uint64
	// Get returns the value of key and its mod revision (the revision of
	// the commit that last wrote it; 0 for a key written by this
	// transaction), or ErrNotFound, or a *DamagedError when the stored
	// value fails its integrity check. The slice is valid only during the
	// transaction.
	Get(key string) ([]byte, uint64, error)
	// Scan calls fn for every key with the given prefix that sorts after
	// startAfter (all when empty), in order, with its value and mod
	// revision, until fn returns false or an error. The value slice is
	// valid only during the call. A value that fails its integrity check
	// ends the scan with a *DamagedError naming its key; a caller that can
	// go on resumes after that key.
	Scan(prefix, startAfter string, fn func(key string, val []byte, rev uint64) (bool, error)) error
	// Changes returns the commits after revision after up to the
	// transaction's revision, in order, or ErrCompacted when the driver
	// no longer keeps all of them. In a write transaction it covers the
	// commits its reads see.
	Changes(after uint64) ([]Change, error)
}

// Tx is a read-write transaction.
type Tx interface {
	ReadTx
	// Put sets key to val. It fails with ErrTooManyOps or ErrTxnTooLarge
	// when the write would exceed the driver's Limits.
	Put(key string, val []byte) error
	// Delete removes key; deleting a missing key is not an error and
	// counts toward no limit.
	Delete(key string) error
}

// Change describes one commit: its revision and the keys it wrote or deleted.
type Change struct {
	Revision uint64
	Keys     []string
}

// Backuper is implemented by drivers that can copy their whole state while
// serving (the bbolt file; an etcd driver would use an etcd snapshot).
type Backuper interface {
	// Backup writes a consistent copy to the writer that open returns;
	// open learns first the revision the copy reflects and its size in
	// bytes.
	Backup(ctx context.Context, open func(rev uint64, size int64) (io.Writer, error)) error
}
