//go:build unix

package main

import (
	"context"
	"fmt"
	"maps"
	"net/mail"
	"os"
	"path/filepath"
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

// Fault tests: real etcd processes (etcdtest.StartClusterWith) and real
// gatehoused processes, killed with SIGKILL while clients use them. Each
// runs for a few seconds in the default test run; FAULTS_TIME (a Go
// duration, as `make faults` sets it) repeats its faults for that long.
// The etcd members run without fsync: a process killed with SIGKILL loses
// nothing the kernel accepted, and fsyncs on a busy shared disk would
// leave the writers little time between the faults.

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
// stretch without an acknowledged write is longer than maxWriteGap; a
// second replica answers decisions throughout, none failed or slow, and
// one of the two replicas leads at the end. After
// each member restarts, every acknowledged write is read back at the
// revision its answer carried, from the second replica and from one that
// talks only to the restarted member.
func TestFaults_EtcdMemberKilled(t *testing.T) {
	t.Parallel()
	binary(t)
	cl := etcdtest.StartClusterWith(t, 3, etcdtest.ClusterOptions{NoFsync: true})
	etcdArgs := func(endpoints ...string) []string {
		return loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", strings.Join(endpoints, ","), "--etcd-prefix", "/faults/",
			"--etcd-leader-ttl", "2s", "--metrics-addr", "127.0.0.1:0")
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

	// Replica b answers decisions throughout: they come from its
	// snapshot and never wait for etcd.
	if _, err := ca.admin.CreateRepresentative(setup, &gatehousev1.CreateRepresentativeRequest{AccountId: "fault-0",
		Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}}); err != nil {
		t.Fatal(err)
	}
	sess, err := cb.sessions.StartSession(setup, &gatehousev1.StartSessionRequest{AccountId: "fault-0", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE,
		RepresentativeId: "alice", CustomerId: "cust-1"})
	if err != nil {
		t.Fatal(err)
	}

	log := newAckLog()
	ctx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	var wg sync.WaitGroup
	began := time.Now()
	entryWriters(ctx, &wg, ca, writers, log)
	decisions := startDecisionLoop(ctx, cb, click(sess.GetSession().GetId(), agent("alice")))

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
	<-decisions.done
	t.Logf("%d decisions on replica b meanwhile, slowest %v", decisions.calls, decisions.slowest.Round(time.Millisecond))
	for _, e := range decisions.errors {
		t.Errorf("a decision on replica b failed: %s", e)
	}
	if decisions.slowest > maxDecisionLatency {
		t.Errorf("a decision on replica b took %v; want at most %v", decisions.slowest, maxDecisionLatency)
	}

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
	if len(log.acked) < 30 {
		t.Errorf("only %d writes were acknowledged; the test did not exercise much", len(log.acked))
	}
	distinctRevisions(t, log.acked)
	log.mu.Unlock()

	// The replicas' election survived the members' deaths: one leads.
	awaitOneLeader(t, 10*time.Second, a, b)
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

// maxDecisionLatency bounds one decision of the loop that runs while the
// other replica is killed: decisions come from the replica's own snapshot,
// so the death of another replica must not slow them down.
const maxDecisionLatency = 2 * time.Second

// takeoverSlack is what a takeover may take beyond the lease TTL: etcd
// revokes an expired lease at its next expiry check (every 500 ms) through
// a Raft commit, the survivor's campaign then sees the old key deleted, and
// the test polls gatehouse_leader every 50 ms; the rest is slack for a
// loaded two-core machine (2.0-2.9 s with a TTL of 2 s measured alone,
// up to 4.8 s with other fault tests and builds running beside it).
const takeoverSlack = 3 * time.Second

// pastSessions is how many ended sessions the leader fault test writes
// before its first fault: a few in the default run (every write on etcd
// waits its turn behind the others', so they take seconds on a loaded
// machine), more under FAULTS_TIME.
func pastSessions(budget time.Duration) int {
	if budget > 0 {
		return 200
	}
	return 40
}

// decisionLoop calls CheckFeature on c until ctx ends, a call every
// couple of milliseconds (to leave the CPU to the processes under test),
// and reports how many calls it made, the errors it saw and the slowest
// call.
type decisionLoop struct {
	calls   int
	errors  []string
	slowest time.Duration
	done    chan struct{}
}

func startDecisionLoop(ctx context.Context, c *clients, req *gatehousev1.CheckFeatureRequest) *decisionLoop {
	l := &decisionLoop{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			began := time.Now()
			cctx, cancel := context.WithTimeout(ctx, testTimeout)
			_, err := c.decide.CheckFeature(cctx, req)
			cancel()
			if ctx.Err() != nil {
				return
			}
			l.calls++
			l.slowest = max(l.slowest, time.Since(began))
			if err != nil && len(l.errors) < 10 {
				l.errors = append(l.errors, fmt.Sprintf("%v after %d calls", err, l.calls))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return l
}

// deliveredSessions returns the sessions whose completed-session records
// inbox holds, with how many times each arrived.
func deliveredSessions(t *testing.T, inbox *smtpInbox) map[string]int {
	t.Helper()
	inbox.mu.Lock()
	defer inbox.mu.Unlock()
	n := map[string]int{}
	for _, raw := range inbox.messages {
		m, err := mail.ReadMessage(strings.NewReader(raw))
		if err != nil {
			t.Fatalf("undecodable message: %v", err)
		}
		// The outbox id is <kind>-<session id>.
		_, sess, _ := strings.Cut(m.Header.Get("X-Gatehouse-Outbox-Id"), "-")
		n[sess]++
	}
	return n
}

// TestFaults_LeaderReplicaKilled runs two replicas on a three-member etcd
// cluster, both delivering completed-session records to one SMTP server,
// and kills the one that leads with SIGKILL. The other:
//   - keeps answering decisions: a loop of CheckFeature calls against it
//     sees no failure and no slow answer;
//   - takes over within the lease TTL (gatehouse_leader 1), and does the
//     leader's work: its sweeper ends a session past --session-max-age, and
//     its sender delivers the records queued before, during and after the
//     takeover;
//   - loses no completed-session record: every session whose end was
//     acknowledged, and the one the sweeper ended, has its record
//     delivered.
func TestFaults_LeaderReplicaKilled(t *testing.T) {
	t.Parallel()
	binary(t)
	const (
		ttl    = 2 * time.Second
		maxAge = 3 * time.Second
	)
	cl := etcdtest.StartClusterWith(t, 3, etcdtest.ClusterOptions{NoFsync: true})
	dir := t.TempDir()
	inbox, smtpAddr := startInbox(t, "gatehouse", "s3cret")
	pwFile := filepath.Join(dir, "smtp.pw")
	if err := os.WriteFile(pwFile, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := func() []string {
		return loopbackArgs(t.TempDir(), "--demo", "--store", "etcd", "--etcd-endpoints", strings.Join(cl.Endpoints(), ","),
			"--etcd-prefix", "/faults/", "--etcd-leader-ttl", ttl.String(), "--metrics-addr", "127.0.0.1:0",
			"--session-max-age", maxAge.String(),
			"--smtp-addr", smtpAddr, "--smtp-username", "gatehouse", "--smtp-password-file", pwFile, "--smtp-from", "gatehouse@example.org")
	}
	budget := faultsTime(t)
	deadline := time.Now().Add(budget)

	var (
		mu        sync.Mutex
		ended     = map[string]bool{} // sessions whose EndSession was acknowledged
		swept     []string            // sessions past their max age when the leader was killed
		endErrors []string
	)
	var all []*daemon
	startReplica := func() *daemon {
		d := start(t, nil, args()...)
		all = append(all, d)
		return d
	}
	// The harness logs the first lines of a failed test's daemons; the
	// leader's work comes later.
	t.Cleanup(func() {
		if t.Failed() {
			for i, d := range all {
				t.Logf("replica %d (%s): %s", i, d.addr, leaderWorkLog(d))
			}
		}
	})
	replicas := []*daemon{startReplica(), startReplica()}
	// Ended sessions the sweeper walks past, as on any busy deployment:
	// a sweep whose write read them all never committed while sessions
	// kept starting.
	prefill, past := time.Now(), pastSessions(budget)
	pc := dial(t, replicas[0].addr)
	var pwg sync.WaitGroup
	for w := range 4 {
		pwg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 2*testTimeout)
			defer cancel()
			for n := range past / 4 {
				resp, err := pc.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
					RepresentativeId: "bob", CustomerId: fmt.Sprintf("past-%d-%d", w, n), PortalId: "helpdesk-default"})
				if err == nil {
					_, err = pc.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: resp.GetSession().GetId()})
				}
				if err != nil {
					t.Errorf("prefill: %v", err)
					return
				}
				mu.Lock()
				ended[resp.GetSession().GetId()] = true
				mu.Unlock()
			}
		})
	}
	pwg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d ended sessions written in %v", past, time.Since(prefill).Round(time.Millisecond))
	for round := 0; round < 1 || time.Now().Before(deadline); round++ {
		lead := awaitOneLeader(t, 10*time.Second, replicas...)
		var other *daemon
		for _, d := range replicas {
			if d != lead {
				other = d
			}
		}
		c := dial(t, other.addr)
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout) // this round's calls
		defer cancel()
		// The leader's sweeper ran when it took over; a session started
		// now is past its max age when the leader dies, and only the next
		// leader's sweep can end it.
		old, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
			RepresentativeId: "bob", CustomerId: "cust-old", PortalId: "helpdesk-default"})
		if err != nil {
			t.Fatal(err)
		}
		started := time.Now()

		loopCtx, stopLoops := context.WithCancel(ctx)
		decisions := startDecisionLoop(loopCtx, c, &gatehousev1.CheckFeatureRequest{SessionId: old.GetSession().GetId(),
			Actor: agent("bob"), Feature: gatehousev1.Feature_FEATURE_CHAT})
		// Sessions start and end on the survivor before, during and after
		// the takeover: their records are queued while the leader lives,
		// while nobody leads, and under the new leader.
		var wg sync.WaitGroup
		wg.Go(func() {
			for n := 0; loopCtx.Err() == nil; n++ {
				resp, err := c.sessions.StartSession(loopCtx, &gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
					RepresentativeId: "bob", CustomerId: fmt.Sprintf("cust-%d-%d", round, n), PortalId: "helpdesk-default"})
				if err == nil {
					_, err = c.sessions.EndSession(loopCtx, &gatehousev1.EndSessionRequest{SessionId: resp.GetSession().GetId(), CustomerRating: 4})
				}
				mu.Lock()
				switch {
				case err == nil:
					ended[resp.GetSession().GetId()] = true
				case loopCtx.Err() == nil:
					endErrors = append(endErrors, err.Error())
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
		time.Sleep(max(0, maxAge+200*time.Millisecond-time.Since(started)))
		if err := lead.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		lead.awaitExit(exitTimeout)
		killed := time.Now()
		awaitOneLeader(t, 2*ttl+2*takeoverSlack, other)
		took := time.Since(killed)
		// The takeover is done when the new leader has swept the old
		// session and delivered everything queued so far.
		sess := old.GetSession().GetId()
		for time.Now().Before(killed.Add(testTimeout)) {
			got, err := c.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: sess})
			if err != nil {
				t.Fatal(err)
			}
			if got.GetSession().GetState() == gatehousev1.SessionState_SESSION_STATE_ENDED {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		sweptAfter := time.Since(killed)
		time.Sleep(500 * time.Millisecond) // sessions end under the new leader
		stopLoops()
		wg.Wait()
		<-decisions.done
		mu.Lock()
		swept = append(swept, sess)
		mu.Unlock()
		t.Logf("round %d: the leader was killed; the other replica led after %v (TTL %v), had swept the session past its max age after %v; %d decisions meanwhile, slowest %v",
			round, took.Round(time.Millisecond), ttl, sweptAfter.Round(time.Millisecond), decisions.calls, decisions.slowest.Round(time.Millisecond))
		if took > ttl+takeoverSlack {
			t.Errorf("round %d: the other replica took over %v after the leader died; want within the lease TTL %v and %v", round, took, ttl, takeoverSlack)
		}
		for _, e := range decisions.errors {
			t.Errorf("round %d: a decision on the surviving replica failed: %s", round, e)
		}
		if decisions.slowest > maxDecisionLatency {
			t.Errorf("round %d: a decision on the surviving replica took %v; want at most %v", round, decisions.slowest, maxDecisionLatency)
		}
		if decisions.calls < 50 {
			t.Errorf("round %d: only %d decisions while the leader was killed; the loop did not exercise much", round, decisions.calls)
		}
		other.awaitLog("swept sessions")
		if t.Failed() {
			return
		}
		// A new replica joins for the next round; it follows.
		replicas = []*daemon{other, startReplica()}
	}

	mu.Lock()
	defer mu.Unlock()
	for _, e := range endErrors {
		t.Errorf("starting or ending a session on the surviving replica failed: %s", e)
	}
	want := maps.Clone(ended)
	for _, s := range swept {
		want[s] = true
	}
	var missing []string
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(50 * time.Millisecond) {
		got := deliveredSessions(t, inbox)
		missing = missing[:0]
		for s := range want {
			if got[s] == 0 {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d ended sessions have no delivered completed-session record, e.g. %s", len(missing), len(want), missing[0])
	}
	t.Logf("%d completed-session records expected, all delivered", len(want))
	for _, d := range replicas {
		d.stop()
	}
}

// leaderWorkLog returns d's log entries about the leader's work, and its
// warnings and errors, one a line.
func leaderWorkLog(d *daemon) string {
	var out []string
	for _, e := range d.logs() {
		msg, _ := e["msg"].(string)
		if e["level"] == "WARN" || e["level"] == "ERROR" || strings.Contains(msg, "sweep") || strings.Contains(msg, "swept") || strings.Contains(msg, "leadership") {
			out = append(out, fmt.Sprint(e))
		}
	}
	return "\n" + strings.Join(out, "\n")
}
