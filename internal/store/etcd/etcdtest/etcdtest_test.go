package etcdtest_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

func TestStart_ServesClients(t *testing.T) {
	srv := etcdtest.Start(t)
	c, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	put, err := c.Put(ctx, "k", "v")
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := c.Get(ctx, "k")
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v" || got.Kvs[0].ModRevision != put.Header.Revision {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

// TestStartCluster_SurvivesOneMemberKilled: a three-member cluster of real
// processes keeps accepting writes with one member killed, and the member
// catches up after a restart.
func TestStartCluster_SurvivesOneMemberKilled(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	c, err := clientv3.New(clientv3.Config{Endpoints: cl.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl.Kill(0)
	// A write in flight while a new leader is elected may time out (etcd
	// does not retry a Put on its own); the cluster accepts it again soon.
	var put *clientv3.PutResponse
	for attempt := 0; ; attempt++ {
		put, err = c.Put(ctx, "k", "after-kill")
		if err == nil {
			break
		}
		if attempt == 20 {
			t.Fatalf("Put with one member of three down: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	cl.Restart(0)
	cl.WaitHealthy(t, 30*time.Second)
	one, err := clientv3.New(clientv3.Config{Endpoints: cl.Endpoints()[:1], DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	got, err := one.Get(ctx, "k")
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "after-kill" || got.Kvs[0].ModRevision != put.Header.Revision {
		t.Fatalf("restarted member reads %+v, %v", got, err)
	}
}
