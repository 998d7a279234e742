package leader_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/gatehouse-dev/gatehouse/internal/leader"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// TestEtcd_LossNoticedPromptly: a leader whose election key goes (deleted,
// or its lease revoked) in the first moments of its term notices at once,
// not on etcd's 100 ms loop for watches that start at a past revision.
// Each trial makes the elector win with a key older than etcd's revision
// (it waited behind another candidate while commits were made), deletes
// the key as soon as the term begins, and 20 ms later commits a marker
// that a current watch of the test sees: the elector must notice its loss
// before the marker is seen. A watch from the key's revision notices
// after it in about four trials of five; a current one before it.
func TestEtcd_LossNoticedPromptly(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	c := newClient(t, srv.Endpoints)
	const (
		prefix = "/loss/leader/"
		marker = "/loss/marker"
		trials = 10
		gap    = 20 * time.Millisecond
	)
	ctx := context.Background()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	marks := c.Watch(wctx, marker, clientv3.WithCreatedNotify())
	if wr := <-marks; !wr.Created {
		t.Fatalf("marker watch: %v", wr.Err())
	}
	prompt := 0
	var notice, baseline []time.Duration
	for i := range trials {
		// Another candidate leads, so that the elector's key waits.
		sess, err := concurrency.NewSession(c, concurrency.WithTTL(10))
		if err != nil {
			t.Fatal(err)
		}
		holder := concurrency.NewElection(sess, prefix)
		if err := holder.Campaign(ctx, "holder"); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		started := make(chan struct{}, 1)
		noticed := make(chan time.Time, 1)
		ran := make(chan struct{})
		el := leader.NewEtcd(c, prefix, 10*time.Second, "elector", nil)
		go func() {
			defer close(ran)
			el.Run(rctx, func(lctx context.Context) {
				started <- struct{}{}
				<-lctx.Done()
				noticed <- time.Now()
			})
		}()
		key := awaitCandidate(t, c, prefix, sess.Lease())
		// Commits while the elector waits: its key is now in the past.
		for j := range 5 {
			if _, err := c.Put(ctx, "/loss/other", fmt.Sprint(j)); err != nil {
				t.Fatal(err)
			}
		}
		if err := holder.Resign(ctx); err != nil {
			t.Fatal(err)
		}
		_ = sess.Close()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatalf("trial %d: the elector did not lead after the holder resigned", i)
		}
		// Lose the key: deleted, or its lease revoked.
		lostAt := time.Now()
		if i%2 == 0 {
			_, err = c.Delete(ctx, string(key.Key))
		} else {
			_, err = c.Revoke(ctx, clientv3.LeaseID(key.Lease))
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(gap)
		putAt := time.Now()
		if _, err := c.Put(ctx, marker, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-marks:
		case <-time.After(10 * time.Second):
			t.Fatal("the marker watch saw nothing")
		}
		markedAt := time.Now()
		var noticedAt time.Time
		select {
		case noticedAt = <-noticed:
		case <-time.After(10 * time.Second):
			t.Fatalf("trial %d: the elector never noticed its key gone", i)
		}
		if noticedAt.Before(markedAt) {
			prompt++
		}
		notice = append(notice, noticedAt.Sub(lostAt))
		baseline = append(baseline, markedAt.Sub(putAt))
		cancel()
		<-ran
	}
	slices.Sort(notice)
	slices.Sort(baseline)
	t.Logf("loss noticed before a commit made %v later was seen in %d of %d trials; median time to notice %v, median time for a current watch to see a commit %v",
		gap, prompt, trials, notice[trials/2], baseline[trials/2])
	if prompt < trials-2 {
		t.Errorf("the elector noticed its loss before a commit made %v after it was seen in only %d of %d trials (times to notice %v)", gap, prompt, trials, notice)
	}
}

// awaitCandidate waits until a candidate other than the one of lease
// waits under prefix, and returns its key.
func awaitCandidate(t *testing.T, c *clientv3.Client, prefix string, lease clientv3.LeaseID) *mvccpb.KeyValue {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get(context.Background(), prefix, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			if clientv3.LeaseID(kv.Lease) != lease {
				return kv
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the elector never campaigned")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
