package store

import (
	"errors"
	"time"
)

// ErrUnavailable: the store did not answer in time (etcd unreachable, or
// without a leader); nothing was committed, unless the error also
// matches ErrCommitUnknown. The caller may retry later.
var ErrUnavailable = errors.New("store unavailable")

// ErrCommitUnknown comes with ErrUnavailable when the store stopped
// answering after a commit was sent: it may or may not have been applied.
var ErrCommitUnknown = errors.New("the commit's outcome is unknown")

// Freshness is implemented by drivers whose view of the store can fall
// behind it without noticing: a replica of a remote store (etcd) that is
// cut off from it keeps the commits it has seen and sees no new ones. A
// driver without it (the bbolt file, which is the store itself) is always
// current.
//
// A driver confirms from time to time, by asking the store itself (etcd:
// a linearizable read, which its leader answers only with a quorum), that
// no commit after some revision had been made by some time.
type Freshness interface {
	// CurrentAsOf returns the latest confirmed time by which the store
	// had made no commit after revision rev: a reader that applied every
	// commit up to rev is known to have been current then. ok is false
	// when no confirmation covers rev (none yet, or only for later
	// revisions: the reader is behind).
	CurrentAsOf(rev uint64) (at time.Time, ok bool)
}
