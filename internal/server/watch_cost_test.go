package server

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// watcher collects the messages of one WatchSessionPolicy stream.
type watcher struct {
	msgs chan *gatehousev1.SessionPolicy
	errs chan error
}

func startWatcher(t testing.TB, ctx context.Context, c gatehousev1.DecisionServiceClient, sess string, actor *gatehousev1.Actor) *watcher {
	t.Helper()
	stream, err := c.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: sess, Actor: actor})
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{msgs: make(chan *gatehousev1.SessionPolicy, 64), errs: make(chan error, 1)}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				w.errs <- err
				return
			}
			w.msgs <- resp.GetPolicy()
		}
	}()
	return w
}

func (w *watcher) next(t testing.TB) *gatehousev1.SessionPolicy {
	t.Helper()
	select {
	case p := <-w.msgs:
		return p
	case err := <-w.errs:
		t.Fatalf("watch ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no message from the watch in 10s")
	}
	return nil
}

// fillAllowlist stores n allowlist entries of acct in one transaction and
// waits until decisions see them.
func (e *testEnv) fillAllowlist(acct string, n int) {
	e.t.Helper()
	rev, err := e.store.Update(context.Background(), func(tx store.Tx) error {
		for i := range n {
			if err := store.PutAllowlistEntry(tx, acct, &policy.AllowlistEntry{ID: fmt.Sprintf("e%05d", i), Pattern: fmt.Sprintf("host-%d.example.com", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.srv.snaps.WaitFor(ctxT(e.t), rev); err != nil {
		e.t.Fatal(err)
	}
}

// TestWatchSessionPolicy_OnlyOwnChangesCost: writes to another account
// send nothing to an account's watchers and build no policy; a write to
// the account reaches every watcher, with one policy built per distinct
// session, actor and language however many watch it.
func TestWatchSessionPolicy_OnlyOwnChangesCost(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("a")
	e.MustCreateAccount("b")
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var watchers []*watcher
	const perKey = 3
	for range 2 {
		sess := e.MustStartSession("a").GetId()
		for _, actor := range []*gatehousev1.Actor{agent("alice"), customer("cust-1")} {
			for range perKey {
				watchers = append(watchers, startWatcher(t, ctx, e.decide, sess, actor))
			}
		}
	}
	for _, w := range watchers {
		if p := w.next(t); len(p.GetAllowlist()) != 0 {
			t.Fatalf("first policy %v", p)
		}
	}
	const keys = 4
	if n := e.srv.watches.len(); n != keys {
		t.Fatalf("%d shared policies for %d watchers of %d sessions and actors; want %d", n, len(watchers), keys, keys)
	}
	// Watchers of one session and actor that join at one revision share
	// one encoded first message. The first session's watchers may have
	// sent theirs before or after the second session was started (two
	// revisions), so at most keys+2 encodings for 12 watchers.
	if got := e.srv.watches.encodes.Load(); got > keys+2 {
		t.Errorf("%d first messages encoded for %d watchers of %d sessions and actors; want at most %d", got, len(watchers), keys, keys+2)
	}
	before := e.srv.watches.builds.Load()
	beforeEnc := e.srv.watches.encodes.Load()
	for i := range 5 {
		e.MustAllow("b", fmt.Sprintf("b%d", i), fmt.Sprintf("b%d.example.com", i))
		e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "b", Chat: i%2 == 0}, "chat")
	}
	// A session of b changes b's sessions, not a's.
	e.MustStartSession("b")
	if got := e.srv.watches.builds.Load() - before; got != 0 {
		t.Errorf("writes to account b built %d policies for a's watchers; want 0", got)
	}
	e.MustAllow("a", "main", "example.com")
	for i, w := range watchers {
		p := w.next(t)
		if len(p.GetAllowlist()) != 1 || p.GetAllowlist()[0].GetPattern() != "example.com" {
			t.Fatalf("watcher %d: next policy after writes to b then a = %v; want a's new entry (b's writes send nothing)", i, p)
		}
	}
	if got := e.srv.watches.builds.Load() - before; got != keys {
		t.Errorf("a write to a built %d policies for %d watchers; want %d (one per session and actor)", got, len(watchers), keys)
	}
	if got := e.srv.watches.encodes.Load() - beforeEnc; got != keys {
		t.Errorf("a write to a encoded %d messages for %d watchers; want %d (one per session and actor)", got, len(watchers), keys)
	}
	// The watchers share the message.
	for _, w := range watchers {
		select {
		case p := <-w.msgs:
			t.Fatalf("unexpected message %v", p)
		default:
		}
	}
}

// liveHeap returns the bytes of the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// processCPU returns the CPU time the process has used.
func processCPU(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestWatchSessionPolicy_OtherTenantsWritesCPU measures the daemon's CPU
// (this process: server and clients) for writes to account b, without and
// then with 256 watchers on account a (2000 allowlist entries), in the
// same run. The target is at most 1.5 times as much (measured: 0.85 to
// 1.4 on a shared two-core machine, 1.64 once with other tests running);
// the test fails above 2.5, generously,
// so that the machine's noise does not fail it while a return of the cost
// does: before watchers compared their inputs, the ratio was about 400.
func TestWatchSessionPolicy_OtherTenantsWritesCPU(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures CPU: not in -short runs or under the race detector")
	}
	e := MustStart(t, "")
	e.MustCreateAccount("a")
	e.MustCreateAccount("b")
	e.fillAllowlist("a", 2000)
	const watchers, sessions = 256, 128
	writes := 30
	if v, err := strconv.Atoi(os.Getenv("WATCH_COST_WRITES")); err == nil && v > 0 {
		writes = v
	}
	n := 0
	writeB := func() time.Duration {
		// Start each round from a collected heap, so that garbage of the
		// set-up (the watchers' first messages) is not charged to it.
		runtime.GC()
		start := processCPU(t)
		for range writes {
			n++
			e.MustAllow("b", fmt.Sprintf("b%05d", n), fmt.Sprintf("b%d.example.com", n))
		}
		return processCPU(t) - start
	}
	// The least of five rounds is the least disturbed by the machine.
	least := func() time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 5 {
			best = min(best, writeB())
		}
		return best
	}
	ids := make([]string, sessions)
	for i := range ids {
		ids[i] = e.MustStartSession("a").GetId()
	}
	writeB() // warm up
	without := least()
	heapWithout := liveHeap()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ws []*watcher
	for i := range watchers {
		actor := agent("alice")
		if i%2 == 1 {
			actor = customer("cust-1")
		}
		ws = append(ws, startWatcher(t, ctx, e.decide, ids[i/2], actor))
	}
	for _, w := range ws {
		if p := w.next(t); len(p.GetAllowlist()) != 2000 {
			t.Fatalf("first policy has %d allowlist entries", len(p.GetAllowlist()))
		}
	}
	with := least()
	heapWith := liveHeap()
	ratio := float64(with) / float64(without)
	t.Logf("%d writes to b: %v CPU without watchers, %v with %d watchers on a (2000 allowlist entries): ratio %.2f; live heap %d KB, %d KB with the watchers",
		writes, without, with, watchers, ratio, heapWithout>>10, heapWith>>10)
	for _, w := range ws {
		select {
		case p := <-w.msgs:
			t.Fatalf("a watcher of a got a message after writes to b: revision %d", p.GetRevision())
		default:
		}
	}
	if ratio > 2.5 {
		t.Errorf("writes to b cost %.2f times as much CPU with %d watchers on a; want at most 1.5 (the test allows 2.5 for noise)", ratio, watchers)
	}
}
