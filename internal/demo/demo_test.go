package demo_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// replicas returns n stores over one shared state: n etcd clients on one
// etcd (as n replicas would be), or one bbolt store n times.
func replicas(t *testing.T, driver string, n int) []store.Store {
	t.Helper()
	out := make([]store.Store, n)
	switch driver {
	case "bolt":
		st, err := bolt.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		for i := range out {
			out[i] = st
		}
	case "etcd":
		srv := etcdtest.Start(t)
		for i := range out {
			st, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints, Prefix: "/demo-test/"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			out[i] = st
		}
	}
	return out
}

// TestSeed_ConcurrentReplicasSeedOnce: replicas that all start with
// --demo on one store at the same moment seed it exactly once: one Seed
// reports it wrote the data, every other finds it there, and the account
// is the winner's (its creation time), not a later overwrite.
func TestSeed_ConcurrentReplicasSeedOnce(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"bolt", "etcd"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			const n = 6
			sts := replicas(t, driver, n)
			ctx := context.Background()
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			seeded := make([]bool, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, st := range sts {
				wg.Go(func() {
					<-start
					ok, err := demo.Seed(ctx, st, base.Add(time.Duration(i)*time.Hour))
					if err != nil {
						t.Errorf("Seed on replica %d: %v", i, err)
					}
					seeded[i] = ok
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, ok := range seeded {
				if !ok {
					continue
				}
				if winner >= 0 {
					t.Fatalf("replicas %d and %d both seeded the demo data", winner, i)
				}
				winner = i
			}
			if winner < 0 {
				t.Fatal("no replica seeded the demo data")
			}
			for i, st := range sts {
				err := st.View(ctx, func(tx store.ReadTx) error {
					ids, err := store.AccountIDs(tx)
					if err != nil {
						return err
					}
					if len(ids) != 1 || ids[0] != demo.AccountID {
						t.Errorf("replica %d sees accounts %v, want only %q", i, ids, demo.AccountID)
					}
					acct, err := store.GetAccount(tx, demo.AccountID)
					if err != nil {
						return err
					}
					if want := base.Add(time.Duration(winner) * time.Hour); !acct.CreateTime.Equal(want) {
						t.Errorf("replica %d: demo account created at %v, want the seeding replica's %v (overwritten by another)", i, acct.CreateTime, want)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("read on replica %d: %v", i, err)
				}
			}
		})
	}
}

// TestSeed_LeavesExistingDataAlone: a restart with --demo (one replica
// or another) never writes over what an admin changed since the seeding.
func TestSeed_LeavesExistingDataAlone(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"bolt", "etcd"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			sts := replicas(t, driver, 2)
			ctx := context.Background()
			if ok, err := demo.Seed(ctx, sts[0], time.Now()); err != nil || !ok {
				t.Fatalf("first Seed = %v, %v; want true", ok, err)
			}
			rev, err := sts[0].Update(ctx, func(tx store.Tx) error {
				s, err := store.GetSettings(tx, demo.AccountID)
				if err != nil {
					return err
				}
				s.Chat = false
				return store.PutSettings(tx, &s)
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range sts {
				if ok, err := demo.Seed(ctx, st, time.Now()); err != nil || ok {
					t.Fatalf("Seed again on replica %d = %v, %v; want false", i, ok, err)
				}
			}
			err = sts[1].View(ctx, func(tx store.ReadTx) error {
				s, err := store.GetSettings(tx, demo.AccountID)
				if err != nil {
					return err
				}
				if s.Chat {
					t.Error("a second Seed turned chat back on")
				}
				if tx.Revision() != rev {
					t.Errorf("store at revision %d after the second Seeds, want %d (nothing written)", tx.Revision(), rev)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
