package etcd_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// TestChanges_FollowsWithoutEtcdResyncDelay: a replica reads the change
// history of another replica's commit about as fast as it reads a key —
// not after etcd's 100 ms loop for watches that start in the past — and
// reads it right. Compared in the same run: reading the commit's change
// record against reading a key, each in a transaction of its own.
func TestChanges_FollowsWithoutEtcdResyncDelay(t *testing.T) {
	srv := etcdtest.Start(t)
	const prefix = "/follow/"
	a, b := open(t, srv, prefix), open(t, srv, prefix)
	ch, cancel := b.Subscribe()
	defer cancel()
	ctx := context.Background()
	var changes, reads []time.Duration
	for i := range 30 {
		before := b.Revision()
		rev := storetest.MustPut(t, a, "k", string(rune('a'+i%26)))
		for b.Revision() < rev {
			select {
			case <-ch:
			case <-time.After(storetest.Wait):
				t.Fatalf("b had no signal of a's commit %d", rev)
			}
		}
		t0 := time.Now()
		err := b.View(ctx, func(tx store.ReadTx) error {
			cs, err := tx.Changes(before)
			if err != nil {
				return err
			}
			if len(cs) == 0 || cs[len(cs)-1].Revision != rev || !slices.Contains(cs[len(cs)-1].Keys, "k") {
				t.Errorf("Changes(%d) = %+v; want the commit %d of k last", before, cs, rev)
			}
			return nil
		})
		changes = append(changes, time.Since(t0))
		if err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		storetest.MustGet(t, b, "k")
		reads = append(reads, time.Since(t1))
	}
	slices.Sort(changes)
	slices.Sort(reads)
	c, r := changes[len(changes)/2], reads[len(reads)/2]
	t.Logf("median: change history %v, key read %v", c, r)
	if c > 5*r {
		t.Errorf("reading another replica's commit took %v (median), %.0fx reading a key (%v): want at most 5x", c, float64(c)/float64(r), r)
	}
}
