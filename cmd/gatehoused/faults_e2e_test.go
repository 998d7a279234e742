//go:build unix

package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// Fault tests: real etcd processes (etcdtest.StartCluster) and real
// gatehoused processes, killed with SIGKILL while clients use them. Each
// runs for a few seconds in the default test run; FAULTS_TIME (a Go
// duration, as `make faults` sets it) repeats its faults for that long.

// faultsTime is how long a fault test keeps injecting faults: 0 (one
// round of each fault) unless FAULTS_TIME is set.
func faultsTime(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("FAULTS_TIME")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("FAULTS_TIME=%q: %v", v, err)
	}
	return d
}

// maxWriteGap bounds how long admin writes may fail while etcd elects a
// new leader after one member of three was killed: the election timeout
// of the test cluster is 500 ms; the rest is the etcd client moving to a
// live member and slack for a loaded two-core machine.
const maxWriteGap = 5 * time.Second

// writeCallTimeout bounds one admin write of the fault tests: a write
// stuck longer than this shows up as a gap.
const writeCallTimeout = 10 * time.Second

// ackLog is what the writers of a fault test were told.
type ackLog struct {
	mu        sync.Mutex
	acked     map[string]uint64 // entry id → revision of its acknowledged create
	unknown   map[string]bool   // entry ids whose create got no answer
	ackTimes  []time.Time       // when each acknowledgement arrived
	transient map[codes.Code]int
	samples   map[string]bool // distinct messages of transient failures
	failed    []string        // errors no fault excuses
}

func newAckLog() *ackLog {
	return &ackLog{acked: map[string]uint64{}, unknown: map[string]bool{}, transient: map[codes.Code]int{}, samples: map[string]bool{}}
}

// entryWriters starts n writers, each creating allowlist entries in its own
// account (fault-<i>) on c until ctx ends. A write that fails with
// UNAVAILABLE or DEADLINE_EXCEEDED is transient (its entry may or may not
// exist); any other failure is recorded in log.failed.
func entryWriters(ctx context.Context, wg *sync.WaitGroup, c *clients, n int, log *ackLog) {
	for w := range n {
		wg.Go(func() {
			acct := fmt.Sprintf("fault-%d", w)
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				cctx, cancel := context.WithTimeout(ctx, writeCallTimeout)
				resp, err := c.admin.CreateAllowlistEntry(cctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: acct,
					Entry: &gatehousev1.AllowlistEntry{Id: id, Pattern: fmt.Sprintf("h%d-%d.example.com", w, i)}})
				cancel()
				now := time.Now()
				log.mu.Lock()
				switch code := status.Code(err); {
				case err == nil:
					log.acked[id] = resp.GetEntry().GetRevision()
					log.ackTimes = append(log.ackTimes, now)
				case ctx.Err() != nil:
					log.unknown[id] = true
				case code == codes.Unavailable || code == codes.DeadlineExceeded:
					log.unknown[id] = true
					log.transient[code]++
					if len(log.samples) < 8 {
						log.samples[err.Error()] = true
					}
				default:
					log.unknown[id] = true
					log.failed = append(log.failed, fmt.Sprintf("create %s/%s: %v", acct, id, err))
				}
				log.mu.Unlock()
				if err != nil && ctx.Err() == nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
}

// longestGap returns the longest time between two acknowledgements (or
// from since to the first) in times, and when it began.
func longestGap(since time.Time, times []time.Time) (gap time.Duration, at time.Time) {
	ts := slices.Clone(times)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	prev := since
	for _, tm := range ts {
		if tm.Before(since) {
			continue
		}
		if d := tm.Sub(prev); d > gap {
			gap, at = d, prev
		}
		prev = tm
	}
	return gap, at
}

// checkEntriesReadBack lists every writer's entries on c and compares them
// with log: each acknowledged create is there at the revision its answer
// carried; each entry there was sent by a writer.
func checkEntriesReadBack(t *testing.T, name string, c *clients, writers int, log *ackLog) {
	t.Helper()
	ctx := testContext(t)
	got := map[string]uint64{}
	for w := range writers {
		token := ""
		for {
			resp, err := c.admin.ListAllowlistEntries(ctx, &gatehousev1.ListAllowlistEntriesRequest{AccountId: fmt.Sprintf("fault-%d", w), PageSize: 1000, PageToken: token})
			if err != nil {
				t.Fatalf("%s: list the entries of fault-%d: %v", name, w, err)
			}
			for _, e := range resp.GetEntries() {
				got[e.GetId()] = e.GetRevision()
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	lost := 0
	for id, rev := range log.acked {
		switch g, ok := got[id]; {
		case !ok:
			if lost++; lost <= 5 {
				t.Errorf("%s: acknowledged entry %s (revision %d) is lost", name, id, rev)
			}
		case g != rev:
			t.Errorf("%s: entry %s is at revision %d; its create was acknowledged at %d", name, id, g, rev)
		}
	}
	if lost > 0 {
		t.Errorf("%s: %d of %d acknowledged writes lost", name, lost, len(log.acked))
	}
	for id := range got {
		if _, ok := log.acked[id]; !ok && !log.unknown[id] {
			t.Errorf("%s: entry %s exists, and no writer sent it", name, id)
		}
	}
}

// distinctRevisions fails the test when two acknowledged writes carry the
// same revision.
func distinctRevisions(t *testing.T, revs map[string]uint64) {
	t.Helper()
	by := map[uint64]string{}
	for id, r := range revs {
		if other, ok := by[r]; ok {
			t.Errorf("writes %s and %s were both acknowledged at revision %d", other, id, r)
		}
		by[r] = id
	}
}

// TestFaults_EtcdMemberKilled kills one etcd member of three with SIGKILL
// — a follower, then the Raft leader, and so on under FAULTS_TIME — while
// four writers stream admin writes into a gatehoused replica. Writes go on:
// a write may fail with UNAVAILABLE while etcd elects a leader, but no
// stretch without an acknowledged write is longer than maxWriteGap. After
// each member restarts, every acknowledged write is read back at the
// revision its answer carried, from another replica and from one that
// talks only to the restarted member.
func TestFaults_EtcdMemberKilled(t *testing.T) {
	t.Parallel()
	binary(t)
	cl := etcdtest.StartCluster(t, 3)
	etcdArgs := func(endpoints ...string) []string {
		return loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", strings.Join(endpoints, ","), "--etcd-prefix", "/faults/")
	}
	a := start(t, nil, etcdArgs(cl.Endpoints()...)...)
	b := start(t, nil, etcdArgs(cl.Endpoints()...)...)
	ca, cb := dial(t, a.addr), dial(t, b.addr)
	const writers = 4
	setup := testContext(t)
	for w := range writers {
		if _, err := ca.admin.CreateAccount(setup, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: fmt.Sprintf("fault-%d", w), DisplayName: "Fault"}}); err != nil {
			t.Fatal(err)
		}
	}

	log := newAckLog()
	ctx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	var wg sync.WaitGroup
	began := time.Now()
	entryWriters(ctx, &wg, ca, writers, log)

	budget := faultsTime(t)
	deadline := time.Now().Add(budget)
	var victims []int
	for round := 0; round < 2 || time.Now().Before(deadline); round++ {
		time.Sleep(time.Second) // writes flow before the fault
		lead := cl.Leader(t, 10*time.Second)
		victim, role := (lead+1)%3, "follower"
		if round%2 == 1 {
			victim, role = lead, "leader"
		}
		cl.Kill(victim)
		killed := time.Now()
		time.Sleep(2 * time.Second) // writes go on with two members of three
		cl.Restart(victim)
		cl.WaitHealthy(t, 30*time.Second)
		time.Sleep(500 * time.Millisecond)
		log.mu.Lock()
		gap, _ := longestGap(killed.Add(-time.Second), log.ackTimes)
		n := len(log.acked)
		log.mu.Unlock()
		t.Logf("round %d: killed the %s (member %d); longest stretch without an acknowledged write around it: %v (%d acknowledged so far)",
			round, role, victim, gap.Round(time.Millisecond), n)
		victims = append(victims, victim)
	}
	stopWriters()
	wg.Wait()

	log.mu.Lock()
	gap, at := longestGap(began, log.ackTimes)
	for _, f := range log.failed {
		t.Errorf("a write failed with an error no fault excuses: %s", f)
	}
	t.Logf("%d rounds in %v: %d writes acknowledged, transient failures %v %v; longest gap %v (%v after the writers began)",
		len(victims), time.Since(began).Round(time.Second), len(log.acked), log.transient, slices.Sorted(maps.Keys(log.samples)), gap.Round(time.Millisecond), at.Sub(began).Round(time.Millisecond))
	if gap > maxWriteGap {
		t.Errorf("no write was acknowledged for %v; a member's loss may stall writes for at most %v", gap, maxWriteGap)
	}
	if len(log.acked) < 50 {
		t.Errorf("only %d writes were acknowledged; the test did not exercise much", len(log.acked))
	}
	distinctRevisions(t, log.acked)
	log.mu.Unlock()

	checkEntriesReadBack(t, "replica b", cb, writers, log)
	// A replica that talks only to the member restarted last reads the
	// same: it caught up on everything written while it was down.
	last := victims[len(victims)-1]
	c := start(t, nil, etcdArgs(cl.Members[last].Client)...)
	checkEntriesReadBack(t, fmt.Sprintf("replica on member %d only", last), dial(t, c.addr), writers, log)
	a.stop()
	b.stop()
	c.stop()
}
