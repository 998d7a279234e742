package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// TestSweep_CommitsUnderSteadyWrites: on etcd a write commits only if what
// it read is unchanged, and a write that scans only if nothing at all
// committed since. A sweep among many sessions must still end the session
// past its max age while sessions keep starting: its write reads only the
// sessions it changes, not every session (which took longer than the gap
// between two starts, so that it never committed). The test's writes all
// scan, as the server's did for audit retention: the strictest case.
func TestSweep_CommitsUnderSteadyWrites(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := etcd.Open(ctx, etcd.Options{Endpoints: srv.Endpoints, Prefix: "/sweep/"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	session := func(id string, state policy.SessionState, started time.Time) *policy.Session {
		s := &policy.Session{ID: id, AccountID: "acme", Kind: policy.SessionKindLiveGuide, State: state,
			RepresentativeID: "alice", CustomerID: "cust", StartTime: started}
		if state == policy.SessionStateEnded {
			s.EndTime = started.Add(time.Minute)
		}
		return s
	}
	// Ended sessions the sweep walks past, and one active past its age.
	const past, batch = 600, 50
	for b := 0; b < past; b += batch {
		if _, err := st.Update(ctx, func(tx store.Tx) error {
			for i := b; i < b+batch; i++ {
				if err := store.PutSession(tx, session(fmt.Sprintf("s-past-%04d", i), policy.SessionStateEnded, now.Add(-2*time.Hour))); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Update(ctx, func(tx store.Tx) error {
		return store.PutSession(tx, session("s-old", policy.SessionStateActive, now.Add(-2*time.Hour)))
	}); err != nil {
		t.Fatal(err)
	}

	// Every write scans, so that it conflicts with every commit.
	write := func(ctx context.Context, fn func(store.Tx) error) (uint64, error) {
		return st.Update(ctx, func(tx store.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			return tx.Scan("audit/", "", func(string, []byte, uint64) (bool, error) { return false, nil })
		})
	}
	// Sessions start without a pause while the sweep runs.
	stop := make(chan struct{})
	var started atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := write(ctx, func(tx store.Tx) error {
				return store.PutSession(tx, session(fmt.Sprintf("s-new-%05d", n), policy.SessionStateActive, time.Now().UTC()))
			}); err != nil {
				t.Errorf("start a session: %v", err)
				return
			}
			started.Add(1)
		}
	})
	sw := &service.Sweeper{Store: st, Write: write, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
	began := time.Now()
	ended, deleted, err := sw.Sweep(sctx, service.SessionLifecycle{MaxAge: time.Hour})
	took := time.Since(began)
	scancel()
	close(stop)
	wg.Wait()
	if err != nil || ended != 1 || deleted != 0 {
		t.Fatalf("Sweep among %d sessions while %d started = ended %d, deleted %d, %v after %v; want the old session ended", past, started.Load(), ended, deleted, err, took)
	}
	t.Logf("swept in %v while %d sessions started", took, started.Load())
}
