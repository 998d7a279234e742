//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	bbolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// rawUpdate runs fn on the kv and meta buckets of the (closed) store in dir.
func rawUpdate(t *testing.T, dir string, fn func(kv, meta *bbolt.Bucket) error) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, "gatehouse.db"), 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return fn(tx.Bucket([]byte("kv")), tx.Bucket([]byte("meta"))) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// wantRefusal launches the daemon on dir and checks that it exits 1
// without serving, says why (every part of want), does not crash, and
// leaves the store as it was: byte for byte when byteExact, else every
// key and value (a store that opens is written once at start, which moves
// bbolt's transaction id, before the snapshot refuses a record).
func wantRefusal(t *testing.T, dir string, byteExact bool, want ...string) {
	t.Helper()
	path := filepath.Join(dir, "gatehouse.db")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	contents := rawContents(t, dir)
	launchRefused(t, dir, want...)
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		if byteExact {
			t.Errorf("the refused store file was modified")
		} else if got := rawContents(t, dir); got != contents {
			t.Errorf("the refused store's contents changed")
		}
	}
}

// launchRefused launches the daemon on dir and checks that it exits 1
// without serving, says every part of want and does not crash; it returns
// the daemon's stderr.
func launchRefused(t *testing.T, dir string, want ...string) string {
	t.Helper()
	d := launch(t, nil, loopbackArgs(dir)...)
	if d.awaitServing() {
		t.Fatalf("serving on %s; want a refusal", d.addr)
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	out := d.stderr()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("stderr %q does not mention %q", out, w)
		}
	}
	for _, crash := range []string{"panic:", "fatal error:", "goroutine "} {
		if strings.Contains(out, crash) {
			t.Errorf("stderr shows a crash (%q)", firstLine(out))
		}
	}
	return out
}

// rawContents returns every bucket, key and value of the store in dir.
func rawContents(t *testing.T, dir string) string {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, "gatehouse.db"), 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bbolt.Bucket) error {
			return bk.ForEach(func(k, v []byte) error {
				fmt.Fprintf(&b, "%s/%q=%q\n", name, k, v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestE2E_RefusesNewerSchema: a store written by a newer binary (a higher
// schema_version) is refused, never read with the wrong layout nor
// "migrated" down.
func TestE2E_RefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := start(t, nil, loopbackArgs(dir, "--demo")...)
	d.stop()
	rawUpdate(t, dir, func(_, meta *bbolt.Bucket) error {
		next := []byte{0, 0, 0, 0, 0, 0, 0, bolt.SchemaVersion + 1}
		return meta.Put([]byte("schema_version"), bolt.Seal([]byte("schema_version"), next))
	})
	wantRefusal(t, dir, true, "newer", fmt.Sprintf("schema %d", bolt.SchemaVersion+1))
}

// TestE2E_UndecodableRecordLeavesItsAccountOut: a record the binary
// cannot decode does not stop start-up, nor serve a partial or defaulted
// view of its account: the daemon logs the account as unreadable, answers
// its sessions' decisions with DATA_LOSS, and serves every other account.
func TestE2E_UndecodableRecordLeavesItsAccountOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)
	d := start(t, nil, loopbackArgs(dir)...)
	c := dial(t, d.addr)
	sessions := map[string]string{}
	for _, acct := range []string{"acme", "other"} {
		sessions[acct] = setupSessionIn(t, c, acct)
	}
	d.stop()
	rawUpdate(t, dir, func(kv, _ *bbolt.Bucket) error {
		// Sealed with a valid checksum: the record itself does not decode.
		k := []byte("t/acme/settings")
		return kv.Put(k, bolt.Seal(k, []byte(`{"agent_click_restricted":`)))
	})

	d = start(t, nil, loopbackArgs(dir)...)
	e := d.mustLog("account unreadable: its decisions are refused until its records are repaired")
	if e["account_id"] != "acme" || e["level"] != "ERROR" || !strings.Contains(fmt.Sprint(e["err"]), "t/acme/settings") {
		t.Errorf("log entry %v; want an ERROR naming account acme and the key t/acme/settings", e)
	}
	c = dial(t, d.addr)
	_, err := c.decide.CheckFeature(ctx, click(sessions["acme"], agent("alice")))
	wantCode(t, "CheckFeature in the unreadable account", err, codes.DataLoss)
	checkDecision(ctx, t, c, click(sessions["other"], agent("alice")), true, gatehousev1.Reason_REASON_ALLOWED, "")
}

// TestE2E_DiskFull limits the size of files the running daemon may write
// (RLIMIT_FSIZE: the write past it fails with EFBIG, as on a full disk) and
// writes until the store file must grow. The write that cannot be stored is
// answered with an error, never OK, and is not visible; decisions keep
// being served; once space is back, writes succeed again without a
// restart; after a restart every acknowledged write is there.
func TestE2E_DiskFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)
	d := start(t, nil, loopbackArgs(dir)...)
	c := dial(t, d.addr)
	for _, id := range []string{"acme", "fill"} {
		if _, err := c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: id, DisplayName: id}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true}, UpdateMask: mask("agent_click_restricted")}); err != nil {
		t.Fatal(err)
	}
	sess, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
	if err != nil {
		t.Fatal(err)
	}
	clickReq := click(sess.GetSession().GetId(), agent("alice"))
	before := checkDecision(ctx, t, c, clickReq, false, gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, "agent_click_restricted")

	fi, err := os.Stat(filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	pid := d.cmd.Process.Pid
	setFsize := func(n uint64) {
		t.Helper()
		if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: n, Max: unix.RLIM_INFINITY}, nil); err != nil {
			t.Skipf("cannot limit the daemon's file size here: %v", err)
		}
	}
	setFsize(uint64(fi.Size()))

	desc := strings.Repeat("d", 1000)
	var ackedIDs []string
	var failed string
	for i := 0; i < 5000 && failed == ""; i++ {
		id := fmt.Sprintf("big-%d", i)
		_, err := c.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "fill",
			Entry: &gatehousev1.AllowlistEntry{Id: id, Pattern: fmt.Sprintf("h%d.example.com", i), Description: desc}})
		switch {
		case err == nil:
			ackedIDs = append(ackedIDs, id)
		case status.Code(err) == codes.Unavailable: // out of space: nothing written, retry later
			failed = id
		default:
			t.Fatalf("write %s with a full disk: %v", id, err)
		}
	}
	if failed == "" {
		t.Fatalf("%d writes of 1 KiB succeeded with the file size limited to %d bytes", len(ackedIDs), fi.Size())
	}
	t.Logf("%d writes acknowledged before %s failed at the file size limit of %d bytes", len(ackedIDs), failed, fi.Size())

	// The failed write is not visible, decisions are still served, and
	// the daemon is healthy.
	if _, err := c.admin.GetAllowlistEntry(ctx, &gatehousev1.GetAllowlistEntryRequest{AccountId: "fill", Id: failed}); status.Code(err) != codes.NotFound {
		t.Errorf("the write that failed is visible: GetAllowlistEntry = %v", err)
	}
	for range 20 {
		got := checkDecision(ctx, t, c, clickReq, false, gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, "agent_click_restricted")
		if got.GetRevision() < before.GetRevision() {
			t.Fatalf("decision at revision %d after the failure, %d before", got.GetRevision(), before.GetRevision())
		}
	}
	if hc, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health with a full disk: %v, %v", hc, err)
	}
	// Further writes keep failing cleanly while the disk is full.
	if _, err := c.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "fill",
		Entry: &gatehousev1.AllowlistEntry{Id: failed, Pattern: "again.example.com", Description: desc}}); err == nil {
		t.Errorf("a write succeeded while the disk is still full")
	}

	// Space comes back: writes succeed again without a restart.
	setFsize(unix.RLIM_INFINITY)
	if _, err := c.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "fill",
		Entry: &gatehousev1.AllowlistEntry{Id: "after", Pattern: "after.example.com", Description: desc}}); err != nil {
		t.Fatalf("write after space came back: %v", err)
	}
	ackedIDs = append(ackedIDs, "after")
	d.stop()

	d = start(t, nil, loopbackArgs(dir)...)
	c = dial(t, d.addr)
	present := map[string]bool{}
	token := ""
	for {
		resp, err := c.admin.ListAllowlistEntries(ctx, &gatehousev1.ListAllowlistEntriesRequest{AccountId: "fill", PageSize: 1000, PageToken: token})
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
	for _, id := range ackedIDs {
		if !present[id] {
			t.Errorf("acknowledged entry %s is missing after restart", id)
		}
	}
	if present[failed] {
		t.Errorf("the entry whose write failed exists after restart")
	}
	if len(present) != len(ackedIDs) {
		t.Errorf("%d entries after restart, %d acknowledged", len(present), len(ackedIDs))
	}
	checkDecision(ctx, t, c, clickReq, false, gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, "agent_click_restricted")
	d.stop()
}

// TestE2E_LimitFlags: --max-recv-msg-size, --max-inflight, --decision-timeout
// and --stats-interval reach the server.
func TestE2E_LimitFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := start(t, nil, loopbackArgs(dir, "--demo", "--max-recv-msg-size", "4096", "--max-inflight", "1",
		"--decision-timeout", "400ms", "--stats-interval", "100ms")...)
	c := dial(t, d.addr)
	ctx := testContext(t)

	big := &gatehousev1.CheckFeatureRequest{SessionId: "s-x", Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://example.com/" + strings.Repeat("a", 5000)}
	_, err := c.decide.CheckFeature(ctx, big)
	wantCode(t, "a 5 KB request with --max-recv-msg-size 4096", err, codes.ResourceExhausted)

	// A decision without a deadline waiting for a revision that never
	// comes ends after --decision-timeout, and holds the only slot while
	// it waits.
	slow := &gatehousev1.CheckFeatureRequest{SessionId: "s-x", Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT, MinRevision: 1 << 60}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		for {
			_, err := c.decide.CheckFeature(context.Background(), slow)
			// A probe below may hold the only slot for a moment, and then
			// this call is the one shed: try again.
			if status.Code(err) == codes.ResourceExhausted && time.Since(start) < 5*time.Second {
				time.Sleep(time.Millisecond)
				continue
			}
			done <- err
			return
		}
	}()
	shed := false
	for !shed && time.Since(start) < 2*time.Second {
		_, err := c.admin.ListAccounts(ctx, &gatehousev1.ListAccountsRequest{})
		shed = status.Code(err) == codes.ResourceExhausted
	}
	if !shed {
		t.Errorf("with --max-inflight 1 and a call waiting, another call was not shed")
	}
	if hc, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health while saturated: %v, %v", hc, err)
	}
	err = <-done
	took := time.Since(start)
	wantCode(t, "a decision without a deadline waiting for a far revision", err, codes.DeadlineExceeded)
	if took < 400*time.Millisecond || took > 5*time.Second {
		t.Errorf("it ended after %v, want about --decision-timeout 400ms", took)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		if i, e := d.logIndex("stats", nil); i >= 0 {
			if logUint(t, e, "goroutines") == 0 || logUint(t, e, "rss") == 0 || logUint(t, e, "heap_alloc") == 0 {
				t.Errorf("stats log entry %v lacks goroutines, rss or heap_alloc", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no stats log entry with --stats-interval 100ms")
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.stop()
}

// TestE2E_ShedQueueFlags: --shed-queue-target and --shed-queue-interval
// reach the server: with a target no call can meet, decisions from more
// callers at once than the admission gate's floor
// (server.DefaultGateMinInflight) end up shed with RESOURCE_EXHAUSTED (shed=queue_delay,
// RetryInfo) while health checks are served; with --shed-queue-target 0
// none is.
func TestE2E_ShedQueueFlags(t *testing.T) {
	t.Parallel()
	req := &gatehousev1.CheckFeatureRequest{SessionId: "s-x", Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}
	run := func(args ...string) (shed *status.Status, other error) {
		d := start(t, nil, loopbackArgs(t.TempDir(), args...)...)
		defer d.stop()
		c := dial(t, d.addr)
		ctx := testContext(t)
		var mu sync.Mutex
		var wg sync.WaitGroup
		end := time.Now().Add(3 * time.Second)
		for range 2 * server.DefaultGateMinInflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					_, err := c.decide.CheckFeature(ctx, req)
					mu.Lock()
					if st, _ := status.FromError(err); st.Code() == codes.ResourceExhausted {
						shed = st
					} else if st.Code() != codes.NotFound && other == nil {
						other = err
					}
					stop := shed != nil && len(args) > 0 && args[1] != "0"
					mu.Unlock()
					if stop {
						return
					}
				}
			}()
		}
		if hc, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health while decisions are shed: %v, %v", hc, err)
		}
		wg.Wait()
		return shed, other
	}
	st, err := run("--shed-queue-target", "1ns", "--shed-queue-interval", "1ms")
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		t.Fatal("no decision shed with --shed-queue-target 1ns")
	}
	var shed string
	var retry bool
	for _, det := range st.Details() {
		switch x := det.(type) {
		case *errdetails.ErrorInfo:
			shed = x.GetMetadata()["shed"]
		case *errdetails.RetryInfo:
			retry = x.GetRetryDelay().AsDuration() > 0
		}
	}
	if shed != "queue_delay" || !retry {
		t.Errorf("shed decision: ErrorInfo shed=%q, RetryInfo %t", shed, retry)
	}
	if st, err := run("--shed-queue-target", "0", "--shed-queue-interval", "1ms"); st != nil || err != nil {
		t.Errorf("--shed-queue-target 0: shed %v, error %v", st, err)
	}
}
