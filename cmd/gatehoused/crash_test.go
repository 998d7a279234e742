//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	bbolt "go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// crashTime is how long a crash test kills and restarts the daemon: d,
// unless CRASH_TIME (a Go duration) overrides it, as `make crash` does.
func crashTime(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	if v := os.Getenv("CRASH_TIME"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("CRASH_TIME=%q: %v", v, err)
		}
	}
	return d
}

// Accounts of the crash test.
const (
	crashAccount = "crash" // allowlist entries and sessions are written here
	togglers     = 2       // accounts tog-0, tog-1: one settings writer each
)

// outcome is what a client knows about one write.
type outcome int

const (
	acked    outcome = iota + 1 // answered OK: must be in the store
	inflight                    // sent, no answer before the kill: may or may not be
)

// toggle is the settings history one toggler knows of.
type toggle struct {
	ackedRev   uint64
	ackedValue bool
	// pending is the value of a write that got no answer, if any.
	pending *bool
	// late is the value of a write that got no answer and was not in the
	// store when it was checked, but that a store serving requests of
	// their own (etcd) may still commit after the daemon died: until the
	// toggler's next acknowledged write, whose commit guard makes the
	// late one fail from then on.
	late       *bool
	writesSent int
}

// crashHistory is everything clients were told across all runs.
type crashHistory struct {
	mu       sync.Mutex
	accounts map[string]outcome // CreateAccount ids
	entries  map[string]outcome // CreateAllowlistEntry ids
	deleted  map[string]outcome // DeleteAllowlistEntry ids
	sessions map[string]outcome // StartSession ids (acked only: ids come from the answer)
	toggles  [togglers]toggle
	revs     []uint64 // revisions of acknowledged writes
	maxRev   uint64   // highest acknowledged revision
	// lateWrites: a write sent to a daemon that died may still commit
	// after the store was checked (etcd goes on with requests it had
	// received).
	lateWrites bool
}

func (h *crashHistory) ack(rev uint64) {
	h.revs = append(h.revs, rev)
	h.maxRev = max(h.maxRev, rev)
}

// reusedRevisions returns the revisions two acknowledged writes share:
// each commit has a revision of its own, across restarts too.
func (h *crashHistory) reusedRevisions() []uint64 {
	seen := map[uint64]bool{}
	var dup []uint64
	for _, r := range h.revs {
		if seen[r] {
			dup = append(dup, r)
		}
		seen[r] = true
	}
	return dup
}

// TestCrash_KillDuringWrites runs the real daemon, writes from several
// goroutines (settings toggles, allowlist creates and deletes, sessions,
// accounts), kills it with SIGKILL at a random moment (sometimes while it
// is still starting), and restarts it on the same directory, over and over.
// After every kill the file must pass bbolt's consistency check and hold
// every acknowledged write, nothing half-applied (an account without its
// settings, a session without its index entry), nothing that was never
// sent, an audit event for every acknowledged revision; after every restart
// the daemon must serve, at a revision no lower than any acknowledged one or
// any it served before, the same answers.
//
// SIGKILL loses nothing the kernel has accepted, so this checks the order
// and atomicity of commits and the acknowledgement protocol, not the fsync
// on power loss.
func TestCrash_KillDuringWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	runCrash(t, crashTime(t, 15*time.Second), 300*time.Millisecond, false, loopbackArgs(dir), func(t *testing.T, h *crashHistory) { checkCrashFile(t, dir, h) })
}

// TestCrash_KillDuringWritesEtcd is TestCrash_KillDuringWrites with the
// store on a three-member etcd cluster of real processes: after every
// kill the records under the daemon's prefix, read straight from etcd,
// hold every acknowledged write and nothing half-applied, and no two
// acknowledged writes share a revision.
func TestCrash_KillDuringWritesEtcd(t *testing.T) {
	t.Parallel()
	binary(t)
	cl := etcdtest.StartClusterWith(t, 3, etcdtest.ClusterOptions{NoFsync: true})
	const prefix = "/crash/"
	args := loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", strings.Join(cl.Endpoints(), ","), "--etcd-prefix", prefix)
	// A commit on a three-member etcd waits for two fsyncs: the writers
	// get more time before each kill.
	runCrash(t, crashTime(t, 10*time.Second), time.Second, true, args, func(t *testing.T, h *crashHistory) { checkCrashEtcd(t, cl.Endpoints(), prefix, h) })
}

// runCrash kills and restarts the daemon of args for budget, each time
// within killWithin of the writers' start; see TestCrash_KillDuringWrites.
// check inspects the store after every kill. lateWrites says the store may
// commit a write of a killed daemon after check (see crashHistory).
func runCrash(t *testing.T, budget, killWithin time.Duration, lateWrites bool, args []string, check func(*testing.T, *crashHistory)) {
	t.Helper()
	binary(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed))
	t.Logf("crash test for %v (CRASH_TIME)", budget)

	h := &crashHistory{accounts: map[string]outcome{}, entries: map[string]outcome{}, deleted: map[string]outcome{}, sessions: map[string]outcome{},
		lateWrites: lateWrites}
	d := start(t, nil, args...)
	setupCrashAccounts(t, dial(t, d.addr), h)
	d.stop()

	var lastServed uint64
	kills, startKills := 0, 0
	deadline := time.Now().Add(budget)
	for iter := 0; iter < 4 || time.Now().Before(deadline); iter++ {
		if iter%6 == 5 {
			// Kill it while it opens the store and builds the snapshot.
			d := launch(t, nil, args...)
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
			_ = d.cmd.Process.Kill()
			<-d.exited
			startKills++
			check(t, h)
			continue
		}
		d := start(t, nil, args...)
		served := logUint(t, d.mustLog("serving"), "revision")
		if served < lastServed || served < h.maxRev {
			t.Fatalf("run %d serves revision %d; it served %d before and acknowledged %d", iter, served, lastServed, h.maxRev)
		}
		lastServed = served
		c := dial(t, d.addr)
		checkCrashAPI(t, c, h)

		ctx, stopWriters := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range togglers {
			wg.Go(func() { toggleWriter(ctx, t, c, h, w) })
		}
		wg.Go(func() { entryWriter(ctx, t, c, h, iter) })
		seed := rng.Uint64()
		wg.Go(func() { entryDeleter(ctx, t, c, h, seed) })
		wg.Go(func() { sessionWriter(ctx, t, c, h) })
		wg.Go(func() { accountWriter(ctx, t, c, h, iter) })
		time.Sleep(time.Duration(rng.Int64N(int64(killWithin))))
		if err := d.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-d.exited
		stopWriters()
		wg.Wait()
		_ = c.conn.Close()
		kills++
		if t.Failed() {
			return
		}
		check(t, h)
		h.mu.Lock()
		dup := h.reusedRevisions()
		h.mu.Unlock()
		if len(dup) > 0 {
			t.Fatalf("revisions %v were acknowledged for more than one write", dup)
		}
		if t.Failed() {
			return
		}
	}
	d = start(t, nil, args...)
	checkCrashAPI(t, dial(t, d.addr), h)
	d.stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("%d kills while writing, %d while starting; %d acknowledged writes (%d accounts, %d entries, %d deletes, %d sessions)",
		kills, startKills, len(h.revs), count(h.accounts, acked), count(h.entries, acked), count(h.deleted, acked), len(h.sessions))
	if len(h.revs) < 20 {
		t.Errorf("only %d writes were acknowledged; the test did not exercise much", len(h.revs))
	}
}

func count(m map[string]outcome, o outcome) int {
	n := 0
	for _, v := range m {
		if v == o {
			n++
		}
	}
	return n
}

// setupCrashAccounts creates the accounts and records the togglers'
// initial settings as acknowledged: a first toggle that dies unanswered
// leaves the settings the account was created with, at that revision.
func setupCrashAccounts(t *testing.T, c *clients, h *crashHistory) {
	t.Helper()
	ctx := testContext(t)
	for _, id := range []string{crashAccount, "tog-0", "tog-1"} {
		if _, err := c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: id, DisplayName: id}}); err != nil {
			t.Fatal(err)
		}
	}
	for w := range togglers {
		s, err := c.admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: fmt.Sprintf("tog-%d", w)})
		if err != nil {
			t.Fatal(err)
		}
		h.toggles[w] = toggle{ackedRev: s.GetSettings().GetRevision(), ackedValue: s.GetSettings().GetAgentClickRestricted()}
	}
	if _, err := c.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: crashAccount,
		Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}}); err != nil {
		t.Fatal(err)
	}
}

// killed reports whether err is how a call ends when the daemon dies under
// it, or the test stopped the writer. Any other error is a failure.
func killed(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled:
		return true
	}
	return false
}

func toggleWriter(ctx context.Context, t *testing.T, c *clients, h *crashHistory, w int) {
	acct := fmt.Sprintf("tog-%d", w)
	for ctx.Err() == nil {
		h.mu.Lock()
		tg := &h.toggles[w]
		v := !tg.ackedValue
		if tg.pending != nil {
			v = !*tg.pending
		}
		tg.pending = &v
		tg.writesSent++
		h.mu.Unlock()
		resp, err := c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
			Settings: &gatehousev1.LiveGuideSettings{AccountId: acct, AgentClickRestricted: v}, UpdateMask: mask("agent_click_restricted")})
		if err != nil {
			if !killed(ctx, err) {
				t.Errorf("toggle %s: %v", acct, err)
			}
			return
		}
		h.mu.Lock()
		tg.ackedRev, tg.ackedValue, tg.pending, tg.late = resp.GetSettings().GetRevision(), v, nil, nil
		h.ack(resp.GetSettings().GetRevision())
		h.mu.Unlock()
	}
}

func entryWriter(ctx context.Context, t *testing.T, c *clients, h *crashHistory, iter int) {
	for n := 0; ctx.Err() == nil; n++ {
		id := fmt.Sprintf("e-%d-%d", iter, n)
		h.mu.Lock()
		h.entries[id] = inflight
		h.mu.Unlock()
		resp, err := c.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: crashAccount,
			Entry: &gatehousev1.AllowlistEntry{Id: id, Pattern: fmt.Sprintf("h%d-%d.example.com", iter, n)}})
		if err != nil {
			if !killed(ctx, err) {
				t.Errorf("create entry %s: %v", id, err)
			}
			return
		}
		h.mu.Lock()
		h.entries[id] = acked
		h.ack(resp.GetEntry().GetRevision())
		h.mu.Unlock()
	}
}

// entryDeleter deletes entries acknowledged in earlier runs.
func entryDeleter(ctx context.Context, t *testing.T, c *clients, h *crashHistory, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for ctx.Err() == nil {
		h.mu.Lock()
		var candidates []string
		for id, o := range h.entries {
			if _, gone := h.deleted[id]; o == acked && !gone {
				candidates = append(candidates, id)
			}
		}
		if len(candidates) == 0 {
			h.mu.Unlock()
			return
		}
		id := candidates[rng.IntN(len(candidates))]
		h.deleted[id] = inflight
		h.mu.Unlock()
		resp, err := c.admin.DeleteAllowlistEntry(ctx, &gatehousev1.DeleteAllowlistEntryRequest{AccountId: crashAccount, Id: id})
		if err != nil {
			if !killed(ctx, err) {
				t.Errorf("delete entry %s: %v", id, err)
			}
			return
		}
		h.mu.Lock()
		h.deleted[id] = acked
		h.ack(resp.GetRevision())
		h.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

func sessionWriter(ctx context.Context, t *testing.T, c *clients, h *crashHistory) {
	for ctx.Err() == nil {
		resp, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: crashAccount, Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE,
			RepresentativeId: "alice", CustomerId: "cust-1"})
		if err != nil {
			if !killed(ctx, err) {
				t.Errorf("start session: %v", err)
			}
			return
		}
		h.mu.Lock()
		h.sessions[resp.GetSession().GetId()] = acked
		h.ack(resp.GetSession().GetRevision())
		h.mu.Unlock()
	}
}

func accountWriter(ctx context.Context, t *testing.T, c *clients, h *crashHistory, iter int) {
	for n := 0; ctx.Err() == nil; n++ {
		id := fmt.Sprintf("c-%d-%d", iter, n)
		h.mu.Lock()
		h.accounts[id] = inflight
		h.mu.Unlock()
		resp, err := c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: id, DisplayName: id}})
		if err != nil {
			if !killed(ctx, err) {
				t.Errorf("create account %s: %v", id, err)
			}
			return
		}
		h.mu.Lock()
		h.accounts[id] = acked
		h.ack(resp.GetAccount().GetRevision())
		h.mu.Unlock()
	}
}

// checkCrashFile opens the store file of a killed daemon directly and
// checks it against what clients were told.
func checkCrashFile(t *testing.T, dir string, h *crashHistory) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	db, err := bbolt.Open(filepath.Join(dir, "gatehouse.db"), 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open the file of a killed daemon: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("consistency check: %w", err)
		}
		meta, kv := tx.Bucket([]byte("meta")), tx.Bucket([]byte("kv"))
		if meta == nil || kv == nil {
			return errors.New("meta or kv bucket missing")
		}
		raw, err := bolt.Unseal([]byte("revision"), meta.Get([]byte("revision")))
		if err != nil || len(raw) != 8 {
			return fmt.Errorf("revision record %x: %v", raw, err)
		}
		rev := uint64(0)
		for _, b := range raw {
			rev = rev<<8 | uint64(b)
		}
		if rev < h.maxRev {
			return fmt.Errorf("file at revision %d; revision %d was acknowledged", rev, h.maxRev)
		}
		has := func(k string) bool { return kv.Get([]byte(k)) != nil }

		// Accounts: acknowledged ones exist with their settings; every
		// account the test created has both records or neither.
		for id, o := range h.accounts {
			a, s := has("acct/"+id), has("t/"+id+"/settings")
			if a != s {
				return fmt.Errorf("account %s half-created: account record %v, settings %v", id, a, s)
			}
			if o == acked && !a {
				return fmt.Errorf("acknowledged account %s is missing", id)
			}
		}
		c := kv.Cursor()
		for k, _ := c.Seek([]byte("acct/c-")); k != nil && strings.HasPrefix(string(k), "acct/c-"); k, _ = c.Next() {
			if _, ok := h.accounts[strings.TrimPrefix(string(k), "acct/")]; !ok {
				return fmt.Errorf("%s exists, and no client ever created it", k)
			}
		}
		// Allowlist entries.
		present := map[string]bool{}
		prefix := "t/" + crashAccount + "/allow/"
		for k, _ := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, _ = c.Next() {
			id := strings.TrimPrefix(string(k), prefix)
			present[id] = true
			if _, ok := h.entries[id]; !ok {
				return fmt.Errorf("entry %s exists, and no client ever created it", id)
			}
			if h.deleted[id] == acked {
				return fmt.Errorf("entry %s was deleted (acknowledged) and is back", id)
			}
		}
		for id, o := range h.entries {
			if o == acked && !present[id] && h.deleted[id] == 0 {
				return fmt.Errorf("acknowledged entry %s is missing", id)
			}
		}
		// Sessions: index and record together.
		sessions := map[string]bool{}
		for k, v := c.Seek([]byte("sess/")); k != nil && strings.HasPrefix(string(k), "sess/"); k, v = c.Next() {
			id := strings.TrimPrefix(string(k), "sess/")
			sessions[id] = true
			acct, err := bolt.Unseal(k, v)
			if err != nil {
				return fmt.Errorf("session index %s: %w", k, err)
			}
			if !has("t/" + string(acct) + "/session/" + id) {
				return fmt.Errorf("session %s has an index entry and no record", id)
			}
		}
		sprefix := "t/" + crashAccount + "/session/"
		for k, _ := c.Seek([]byte(sprefix)); k != nil && strings.HasPrefix(string(k), sprefix); k, _ = c.Next() {
			if id := strings.TrimPrefix(string(k), sprefix); !sessions[id] {
				return fmt.Errorf("session %s has a record and no index entry", id)
			}
		}
		for id := range h.sessions {
			if !sessions[id] {
				return fmt.Errorf("acknowledged session %s is missing", id)
			}
		}
		// Settings of the togglers.
		for w := range togglers {
			var s struct {
				Restricted bool `json:"agent_click_restricted"`
			}
			key := fmt.Appendf(nil, "t/tog-%d/settings", w)
			// The revision that wrote a record is in the driver's
			// envelope (its mod revision), not in the record.
			raw, modRev, err := bolt.UnsealRev(key, kv.Get(key))
			if err != nil {
				return fmt.Errorf("tog-%d settings: %w", w, err)
			}
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("tog-%d settings: %v", w, err)
			}
			if err := checkToggle(w, &h.toggles[w], s.Restricted, modRev, h.lateWrites); err != nil {
				return err
			}
		}
		// Every record's checksum holds: a kill never leaves a torn value.
		if err := kv.ForEach(func(k, v []byte) error {
			_, err := bolt.Unseal(k, v)
			return err
		}); err != nil {
			return fmt.Errorf("a record fails its checksum: %w", err)
		}
		// Every acknowledged commit carries its audit events.
		for _, r := range h.revs {
			k := fmt.Sprintf("audit/%020d-", r)
			if got, _ := c.Seek([]byte(k)); got == nil || !strings.HasPrefix(string(got), k) {
				return fmt.Errorf("acknowledged revision %d has no audit event", r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("store file after a kill: %v", err)
	}
}

// checkCrashEtcd reads the records of a killed daemon straight from etcd,
// under prefix, and checks them against what clients were told, as
// checkCrashFile does for a bbolt file (the driver checks every value's
// checksum as it reads it).
func checkCrashEtcd(t *testing.T, endpoints []string, prefix string, h *crashHistory) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	ctx := testContext(t)
	st, err := etcd.Open(ctx, etcd.Options{Endpoints: endpoints, Prefix: prefix})
	if err != nil {
		t.Fatalf("open the etcd store of a killed daemon: %v", err)
	}
	defer st.Close()
	err = st.View(ctx, func(tx store.ReadTx) error {
		if rev := tx.Revision(); rev < h.maxRev {
			return fmt.Errorf("etcd at revision %d; revision %d was acknowledged", rev, h.maxRev)
		}
		has := func(k string) (bool, error) {
			_, _, err := tx.Get(k)
			if errors.Is(err, store.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		}
		keys := func(prefix string) (map[string][]byte, error) {
			out := map[string][]byte{}
			err := tx.Scan(prefix, "", func(k string, v []byte, _ uint64) (bool, error) {
				out[strings.TrimPrefix(k, prefix)] = slices.Clone(v)
				return true, nil
			})
			return out, err
		}
		for id, o := range h.accounts {
			a, err := has("acct/" + id)
			if err != nil {
				return err
			}
			s, err := has("t/" + id + "/settings")
			if err != nil {
				return err
			}
			if a != s {
				return fmt.Errorf("account %s half-created: account record %v, settings %v", id, a, s)
			}
			if o == acked && !a {
				return fmt.Errorf("acknowledged account %s is missing", id)
			}
		}
		accts, err := keys("acct/c-")
		if err != nil {
			return err
		}
		for id := range accts {
			if _, ok := h.accounts["c-"+id]; !ok {
				return fmt.Errorf("account c-%s exists, and no client ever created it", id)
			}
		}
		present, err := keys("t/" + crashAccount + "/allow/")
		if err != nil {
			return err
		}
		for id := range present {
			if _, ok := h.entries[id]; !ok {
				return fmt.Errorf("entry %s exists, and no client ever created it", id)
			}
			if h.deleted[id] == acked {
				return fmt.Errorf("entry %s was deleted (acknowledged) and is back", id)
			}
		}
		for id, o := range h.entries {
			if _, ok := present[id]; o == acked && !ok && h.deleted[id] == 0 {
				return fmt.Errorf("acknowledged entry %s is missing", id)
			}
		}
		index, err := keys("sess/")
		if err != nil {
			return err
		}
		for id, acct := range index {
			if ok, err := has("t/" + string(acct) + "/session/" + id); err != nil || !ok {
				return fmt.Errorf("session %s has an index entry and no record (%v)", id, err)
			}
		}
		records, err := keys("t/" + crashAccount + "/session/")
		if err != nil {
			return err
		}
		for id := range records {
			if _, ok := index[id]; !ok {
				return fmt.Errorf("session %s has a record and no index entry", id)
			}
		}
		for id := range h.sessions {
			if _, ok := index[id]; !ok {
				return fmt.Errorf("acknowledged session %s is missing", id)
			}
		}
		for w := range togglers {
			var s struct {
				Restricted bool `json:"agent_click_restricted"`
			}
			raw, modRev, err := tx.Get(fmt.Sprintf("t/tog-%d/settings", w))
			if err != nil {
				return fmt.Errorf("tog-%d settings: %w", w, err)
			}
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("tog-%d settings: %v", w, err)
			}
			if err := checkToggle(w, &h.toggles[w], s.Restricted, modRev, h.lateWrites); err != nil {
				return err
			}
		}
		// Every value under the prefix passes its checksum.
		if err := tx.Scan("", "", func(string, []byte, uint64) (bool, error) { return true, nil }); err != nil {
			return fmt.Errorf("a record fails its checksum: %w", err)
		}
		// Every acknowledged commit carries its audit events: events
		// whose mod revision is the commit's (on etcd the revision in an
		// event's key is only the first one its commit could have had).
		audited := map[uint64]bool{}
		if err := tx.Scan("audit/", "", func(_ string, _ []byte, rev uint64) (bool, error) {
			audited[rev] = true
			return true, nil
		}); err != nil {
			return err
		}
		for _, r := range h.revs {
			if !audited[r] {
				return fmt.Errorf("acknowledged revision %d has no audit event", r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("etcd store after a kill: %v", err)
	}
}

// checkToggle checks a toggler's stored setting: the acknowledged value,
// or the value of the one write still in flight when the daemon died (or,
// with lateWrites, of one that was in flight at an earlier death).
func checkToggle(w int, tg *toggle, value bool, rev uint64, lateWrites bool) error {
	unanswered := func(p *bool) bool { return p != nil && *p == value }
	switch {
	case rev < tg.ackedRev:
		return fmt.Errorf("tog-%d settings at revision %d; revision %d was acknowledged", w, rev, tg.ackedRev)
	case rev == tg.ackedRev && value != tg.ackedValue:
		return fmt.Errorf("tog-%d settings at the acknowledged revision %d hold %v, the answer said %v", w, rev, value, tg.ackedValue)
	case rev > tg.ackedRev && !unanswered(tg.pending) && !unanswered(tg.late):
		return fmt.Errorf("tog-%d settings at revision %d (acknowledged %d) hold %v, which no unanswered write sent", w, rev, tg.ackedRev, value)
	}
	// Settle what the store decided, so that the next run knows; a write
	// not in the store yet may still land where late writes happen.
	switch {
	case rev > tg.ackedRev:
		tg.late = nil
	case lateWrites && tg.pending != nil:
		tg.late = tg.pending
	}
	tg.ackedRev, tg.ackedValue, tg.pending = rev, value, nil
	return nil
}

// checkCrashAPI checks what a restarted daemon answers against the history.
func checkCrashAPI(t *testing.T, c *clients, h *crashHistory) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	ctx := testContext(t)
	for w := range togglers {
		s, err := c.admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: fmt.Sprintf("tog-%d", w)})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkToggle(w, &h.toggles[w], s.GetSettings().GetAgentClickRestricted(), s.GetSettings().GetRevision(), h.lateWrites); err != nil {
			t.Fatalf("after restart: %v", err)
		}
	}
	present := map[string]bool{}
	token := ""
	for {
		resp, err := c.admin.ListAllowlistEntries(ctx, &gatehousev1.ListAllowlistEntriesRequest{AccountId: crashAccount, PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetEntries() {
			present[e.GetId()] = true
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	for id, o := range h.entries {
		if o == acked && h.deleted[id] == 0 && !present[id] {
			t.Fatalf("acknowledged entry %s is not served after restart", id)
		}
		if h.deleted[id] == acked && present[id] {
			t.Fatalf("deleted entry %s is served after restart", id)
		}
	}
	// A few acknowledged sessions answer decisions.
	n := 0
	for id := range h.sessions {
		if n++; n > 5 {
			break
		}
		resp, err := c.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: id, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
		if err != nil {
			t.Fatalf("decision on acknowledged session %s after restart: %v", id, err)
		}
		if resp.GetRevision() < h.maxRev {
			t.Fatalf("decision after restart at revision %d; %d was acknowledged", resp.GetRevision(), h.maxRev)
		}
	}
}

// TestCheckToggle pins the crash test's settings oracle, including the
// case that once failed it: the first toggle of a run dies unanswered and
// uncommitted, so the file still holds the settings of account creation.
func TestCheckToggle(t *testing.T) {
	t.Parallel()
	on, off := true, false
	for _, tc := range []struct {
		name     string
		tg       toggle
		late     bool // lateWrites
		value    bool
		rev      uint64
		ok       bool
		wantLate *bool // tg.late after an accepted check
	}{
		{"first write lost", toggle{ackedRev: 2, pending: &on}, false, false, 2, true, nil},
		{"first write committed unanswered", toggle{ackedRev: 2, pending: &on}, false, true, 9, true, nil},
		{"acknowledged value kept", toggle{ackedRev: 9, ackedValue: true}, false, true, 9, true, nil},
		{"acknowledged value changed", toggle{ackedRev: 9, ackedValue: true}, false, false, 9, false, nil},
		{"acknowledged write lost", toggle{ackedRev: 9, ackedValue: true}, false, false, 2, false, nil},
		{"newer value nobody sent", toggle{ackedRev: 9, ackedValue: true}, false, false, 12, false, nil},
		{"newer value of the wrong write", toggle{ackedRev: 9, ackedValue: true, pending: &off}, false, true, 12, false, nil},
		// etcd: a write of a dead daemon may commit after the check.
		{"unanswered write not there yet", toggle{ackedRev: 9, ackedValue: true, pending: &off}, true, true, 9, true, &off},
		{"unanswered write landed late", toggle{ackedRev: 9, ackedValue: true, late: &off}, true, false, 12, true, nil},
		{"late write of the wrong value", toggle{ackedRev: 9, ackedValue: true, late: &on}, true, false, 12, false, nil},
		{"no late write without lateWrites", toggle{ackedRev: 9, ackedValue: true, pending: &off}, false, true, 9, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := tc.tg
			err := checkToggle(0, &tg, tc.value, tc.rev, tc.late)
			if (err == nil) != tc.ok {
				t.Fatalf("checkToggle(%+v, %v at %d) = %v; want ok=%v", tc.tg, tc.value, tc.rev, err, tc.ok)
			}
			if err == nil && (tg.ackedRev != tc.rev || tg.ackedValue != tc.value || tg.pending != nil) {
				t.Fatalf("after an accepted check the history is %+v; want %v at %d settled", tg, tc.value, tc.rev)
			}
			if err == nil && (tg.late == nil) != (tc.wantLate == nil) || tg.late != nil && tc.wantLate != nil && *tg.late != *tc.wantLate {
				t.Fatalf("after the check late = %v; want %v", tg.late, tc.wantLate)
			}
		})
	}
}
