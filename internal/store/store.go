// Package store defines how Gatehouse persists its state: a small
// transactional key-value interface (Store, Tx) that the embedded bbolt
// driver implements today and an etcd driver can implement later, plus the
// key layout and typed record helpers shared by every driver.
//
// Every committed write bumps one store revision. Drivers publish each
// commit as a Change so that the decision snapshot can follow the store.
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
// revision. Keys are UTF-8 strings ordered bytewise.
type Store interface {
	// View runs fn in a consistent read-only transaction.
	View(ctx context.Context, fn func(ReadTx) error) error
	// Update runs fn in a read-write transaction and commits it (durably)
	// when fn returns nil; any error rolls everything back. It returns the
	// store revision of the commit, or the current revision when fn wrote
	// nothing. An error means nothing was committed.
	Update(ctx context.Context, fn func(Tx) error) (uint64, error)
	// Revision returns the revision of the last commit.
	Revision() uint64
	// Changes returns the commits after revision rev in order. Called inside
	// View it covers at least every commit up to the transaction's revision
	// (later ones may be present; callers skip them). It returns
	// ErrCompacted when it no longer knows all of them.
	Changes(rev uint64) ([]Change, error)
	// Subscribe returns a channel that receives a value (coalesced) after
	// every commit, and a function that ends the subscription.
	Subscribe() (<-chan struct{}, func())
	// Close releases the store. Transactions in flight finish first.
	Close() error
}

// ReadTx reads a consistent view of the store.
type ReadTx interface {
	// Revision is the revision the transaction reads at; in a write
	// transaction it is the revision the commit will have.
	Revision() uint64
	// Get returns the value of key, or ErrNotFound, or a *DamagedError
	// when the stored value fails its integrity check. The slice is valid
	// only during the transaction.
	Get(key string) ([]byte, error)
	// Scan calls fn for every key with the given prefix that sorts after
	// startAfter (all when empty), in order, until fn returns false or an
	// error. The value slice is valid only during the call. A value that
	// fails its integrity check ends the scan with a *DamagedError naming
	// its key; a caller that can go on resumes after that key.
	Scan(prefix, startAfter string, fn func(key string, val []byte) (bool, error)) error
}

// Tx is a read-write transaction.
type Tx interface {
	ReadTx
	// Put sets key to val.
	Put(key string, val []byte) error
	// Delete removes key; deleting a missing key is not an error.
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
