// Package storetest is the conformance suite every store.Store driver must
// pass, and small helpers for driver tests.
//
// A driver is tested by one call: Run, with a function that opens a fresh,
// empty store and arranges (with t.Cleanup) for it to be closed when the
// test ends. Closing an already closed store must not panic. The suite is
// split by concern, one file each:
//
//	kv.go          KV semantics: Put, Get, Delete, Scan, rollback, contexts, Close
//	revisions.go   store and mod revisions; the revision of a write is known after commit
//	conflicts.go   conflicting writers, and Update functions that run more than once
//	concurrency.go concurrent writers and readers
//	changes.go     the change feed, Subscribe, and a follower that resumes from a revision
//	compaction.go  compacted history answers ErrCompacted (store.Compactor)
//	limits.go      the driver's declared operation and size limits
//	values.go      large values and many keys
//	fence.go       writes under a term of leadership (store.Fence)
//
// The suite holds for drivers that run an Update's function more than once
// (optimistic concurrency): the bbolt driver's tests run it a second time
// with every function run twice and with etcd's default limits.
package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Wait bounds every wait for something another goroutine or the driver
// must do.
const Wait = 10 * time.Second

// quiet is how long a test watches for a signal that must not come.
const quiet = 100 * time.Millisecond

var errBoom = errors.New("boom")

// Test is one conformance test.
type Test struct {
	Name string
	Fn   func(t *testing.T, s store.Store)
}

// Tests returns the conformance tests, grouped by concern.
func Tests() []Test {
	return []Test{
		// KV semantics.
		{"PutGetDelete", testPutGetDelete},
		{"PutDoesNotRetainValue", testPutDoesNotRetainValue},
		{"FailedUpdateCommitsNothing", testFailedUpdateCommitsNothing},
		{"EmptyUpdateKeepsRevision", testEmptyUpdateKeepsRevision},
		{"Scan", testScan},
		{"ScanStopsAndPropagatesErrors", testScanStops},
		{"CancelledContext", testCancelledContext},
		{"CloseWaitsForTransactions", testCloseWaits},
		{"UseAfterClose", testUseAfterClose},
		// Revisions.
		{"UpdateBumpsRevision", testUpdateBumpsRevision},
		{"TxRevision", testTxRevision},
		{"ModRevisions", testModRevisions},
		{"RecordRevisions", testRecordRevisions},
		// Conflicts and retries.
		{"OnlyLastRunCommits", testOnlyLastRunCommits},
		{"ConflictingWritersSerialize", testConflictingWritersSerialize},
		{"ScanningWriteUnderTraffic", testScanningWriteUnderTraffic},
		{"ScanningWriteSeesConflicts", testScanningWriteSeesConflicts},
		// Concurrent writers and readers.
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ViewIsConsistent", testViewIsConsistent},
		// Change feed and resume.
		{"Changes", testChanges},
		{"Subscribe", testSubscribe},
		{"FollowerResumes", testFollowerResumes},
		// Compaction.
		{"Compaction", testCompaction},
		// Operation limits.
		{"OperationLimits", testOperationLimits},
		{"SizeLimits", testSizeLimits},
		// Large values.
		{"LargeValues", testLargeValues},
		{"ManyKeys", testManyKeys},
		// Fenced writes.
		{"FenceHeld", testFenceHeld},
		{"FenceLost", testFenceLost},
		{"FenceLostDuringUpdate", testFenceLostDuringUpdate},
	}
}

// Run runs the conformance suite. open must return a fresh, empty store
// that is closed when t ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range Tests() {
		t.Run(tc.Name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			tc.Fn(t, s)
		})
	}
}
