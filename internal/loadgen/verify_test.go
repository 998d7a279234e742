package loadgen

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// daemon is a real server on a loopback port over a real store holding a
// generated dataset.
type daemon struct {
	st    *bolt.Store
	srv   *server.Server
	conns Conns
}

// startDaemon writes d into a store in a temporary directory, lets edit
// change the store afterwards (as if it had been changed after the
// manifest was written), and serves it, running one session sweep with
// the daemon's default --session-max-age first.
func startDaemon(t *testing.T, d *Dataset, edit func(tx store.Tx) error) *daemon {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteStore(ctx, st, d, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		if _, err := st.Update(ctx, edit); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	snaps, err := replica.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { defer close(followed); snaps.Run(fctx) }()
	srv := server.New(server.Options{Store: st, Snapshots: snaps, Logger: log})
	if _, err := snaps.WaitFor(ctx, st.Revision()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.SweepSessions(ctx, server.SessionLifecycle{MaxAge: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		<-served
		stop()
		<-followed
		_ = st.Close()
	})
	return &daemon{st: st, srv: srv, conns: Conns{cc}}
}

// runAll sends every check of w once, as CheckFeature and in CheckFeatures
// batches of 50, and returns the first error.
func runAll(t *testing.T, dm *daemon, w *Workload) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	check := CheckOp(dm.conns, w)
	// CheckOp picks check (worker*7919+seq) mod n; worker 0 walks them all.
	for seq := range uint64(len(w.Checks)) {
		if err := check(ctx, 0, seq); err != nil {
			return err
		}
	}
	batch := BatchOp(dm.conns, w, 50)
	for seq := range uint64(len(w.Checks) / 50) {
		if err := batch(ctx, 0, seq); err != nil {
			return err
		}
	}
	return nil
}

func liveDataset(t *testing.T) (*Dataset, *Manifest) {
	t.Helper()
	d := mustGenerate(t, Small())
	d.StampSessions(time.Now())
	return d, NewManifest(d, 0, 60)
}

// TestVerify_GeneratedStoreAnswersAsExpected: a daemon serving the store
// the generator wrote answers every generated check, single and batched,
// the way the generator expects; the workload covers every kind of
// expected answer.
func TestVerify_GeneratedStoreAnswersAsExpected(t *testing.T) {
	t.Parallel()
	d, m := liveDataset(t)
	w, err := BuildWorkload(m, 4000, DefaultMix, 7)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[gatehousev1.Reason]int{}
	for _, e := range w.Expect {
		reasons[e.Reason]++
	}
	for _, r := range []gatehousev1.Reason{gatehousev1.Reason_REASON_ALLOWED, gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED,
		gatehousev1.Reason_REASON_ELEMENT_BLOCKED, gatehousev1.Reason_REASON_ELEMENT_MASKED} {
		if reasons[r] == 0 {
			t.Errorf("workload expects no %v: %v", r, reasons)
		}
	}
	if reasons[gatehousev1.Reason_REASON_PORTAL_FUNCTION_DISABLED]+reasons[gatehousev1.Reason_REASON_REPRESENTATIVE_FUNCTION_DISABLED] == 0 {
		t.Errorf("workload expects no support function denial: %v", reasons)
	}
	if err := runAll(t, startDaemon(t, d, nil), w); err != nil {
		t.Fatal(err)
	}
}

// TestVerify_ChangedStoreFails: when the store answers differently from
// what the generator built (changed after the manifest was written, or
// its sessions ended by the sweeper), the workload fails with a
// MismatchError naming the request and both answers.
func TestVerify_ChangedStoreFails(t *testing.T) {
	t.Parallel()
	forAccounts := func(d *Dataset, f func(tx store.Tx, ad *policy.AccountData) error) func(tx store.Tx) error {
		return func(tx store.Tx) error {
			for i := range d.Accounts {
				if err := f(tx, &d.Accounts[i]); err != nil {
					return err
				}
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name  string
		stale bool // sessions stamped at the epoch: the sweeper ends them
		edit  func(d *Dataset) func(tx store.Tx) error
	}{
		{name: "sessions ended by the sweeper", stale: true},
		{name: "agent clicks restricted", edit: func(d *Dataset) func(tx store.Tx) error {
			return forAccounts(d, func(tx store.Tx, ad *policy.AccountData) error {
				s := ad.Settings
				s.AgentClickRestricted, s.AgentInputRestricted = !s.AgentClickRestricted, !s.AgentInputRestricted
				return store.PutSettings(tx, &s)
			})
		}},
		{name: "allowlist entries removed", edit: func(d *Dataset) func(tx store.Tx) error {
			return forAccounts(d, func(tx store.Tx, ad *policy.AccountData) error {
				for _, e := range ad.Allowlist[min(1, len(ad.Allowlist)):] {
					if err := store.DeleteAllowlistEntry(tx, ad.Account.ID, e.ID); err != nil {
						return err
					}
				}
				return nil
			})
		}},
		{name: "portal functions switched", edit: func(d *Dataset) func(tx store.Tx) error {
			return forAccounts(d, func(tx store.Tx, ad *policy.AccountData) error {
				for _, p := range ad.Portals {
					p.Functions = allFunctions &^ p.Functions
					if err := store.PutPortal(tx, ad.Account.ID, &p); err != nil {
						return err
					}
				}
				return nil
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := mustGenerate(t, Small())
			if !tc.stale {
				d.StampSessions(time.Now())
			}
			m := NewManifest(d, 0, 60)
			w, err := BuildWorkload(m, 2000, DefaultMix, 3)
			if err != nil {
				t.Fatal(err)
			}
			var edit func(tx store.Tx) error
			if tc.edit != nil {
				edit = tc.edit(d)
			}
			err = runAll(t, startDaemon(t, d, edit), w)
			var mm *MismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("changed store: %v, want a MismatchError", err)
			}
			msg := err.Error()
			for _, want := range []string{"request:", "session_id:", "want:", "got:"} {
				if !strings.Contains(msg, want) {
					t.Errorf("mismatch message lacks %q:\n%s", want, msg)
				}
			}
			if tc.stale && mm.Got.GetReason() != gatehousev1.Reason_REASON_SESSION_ENDED {
				t.Errorf("stale sessions: got %v, want SESSION_ENDED", mm.Got.GetReason())
			}
			t.Logf("%s", msg)
		})
	}
}

// TestRestampSessions: a store generated earlier gets its sessions moved
// to a new stamp and serves them live; once the sweeper has ended them,
// RestampSessions reports ErrStale and changes nothing.
func TestRestampSessions(t *testing.T) {
	t.Parallel()
	d := mustGenerate(t, Tiny()) // stamped at the epoch: swept at start
	dm := startDaemon(t, d, nil)
	ctx := context.Background()
	if _, err := RestampSessions(ctx, dm.st, d); !errors.Is(err, ErrStale) {
		t.Fatalf("restamp after the sweep: %v, want ErrStale", err)
	}

	d2 := mustGenerate(t, Tiny())
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := WriteStore(ctx, st, d2, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	at := d2.StampSessions(time.Now())
	if _, err := RestampSessions(ctx, st, d2); err != nil {
		t.Fatal(err)
	}
	err = st.View(ctx, func(tx store.ReadTx) error {
		for _, want := range d2.Sessions {
			got, err := store.GetSession(tx, want.ID)
			if err != nil {
				return err
			}
			if !got.StartTime.Equal(want.StartTime) || got.StartTime.After(at) || at.Sub(got.StartTime) > SessionSpread {
				t.Errorf("session %s starts %v, want %v (stamp %v)", got.ID, got.StartTime, want.StartTime, at)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
