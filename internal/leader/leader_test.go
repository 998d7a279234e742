package leader_test

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/internal/leader"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

const ttl = time.Second

// replica is one elector running fn, which records its terms.
type replica struct {
	name    string
	client  *clientv3.Client
	cancel  context.CancelFunc
	done    chan struct{}
	leading atomic.Bool
	lost    atomic.Pointer[chan struct{}] // closed by fn when its context ends
	terms   atomic.Int32
}

// campaigners counts the fn calls running at once, over every replica.
type campaigners struct {
	running atomic.Int32
	overlap atomic.Bool
}

func newClient(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func startReplica(t *testing.T, c *clientv3.Client, name string, all *campaigners) *replica {
	t.Helper()
	r := &replica{name: name, client: c, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	el := leader.NewEtcd(c, "/test/leader/", ttl, name, nil)
	go func() {
		defer close(r.done)
		el.Run(ctx, func(lctx context.Context) {
			if all.running.Add(1) > 1 {
				all.overlap.Store(true)
			}
			lost := make(chan struct{})
			r.lost.Store(&lost)
			r.terms.Add(1)
			r.leading.Store(true)
			<-lctx.Done()
			r.leading.Store(false)
			all.running.Add(-1)
			close(lost)
		})
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *replica) stop(t *testing.T) {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Run did not return after its context ended", r.name)
	}
}

// awaitLeader waits until exactly one of rs leads and returns it.
func awaitLeader(t *testing.T, within time.Duration, rs ...*replica) *replica {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var leaders []*replica
		for _, r := range rs {
			if r.leading.Load() {
				leaders = append(leaders, r)
			}
		}
		if len(leaders) > 1 {
			t.Fatalf("%d replicas lead at once", len(leaders))
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no leader within %v", within)
	return nil
}

// other returns the replica of a, b that is not r.
func other(r, a, b *replica) *replica {
	if r == a {
		return b
	}
	return a
}

// TestEtcd_OneLeaderAtATime: of two electors on one etcd exactly one runs
// fn, and it keeps the leadership while its session lives.
func TestEtcd_OneLeaderAtATime(t *testing.T) {
	srv := etcdtest.Start(t)
	var all campaigners
	a := startReplica(t, newClient(t, srv.Endpoints), "a", &all)
	b := startReplica(t, newClient(t, srv.Endpoints), "b", &all)
	l := awaitLeader(t, 5*time.Second, a, b)
	// Across several TTLs the leader keeps the lease alive and nobody
	// else runs fn.
	for range 30 {
		time.Sleep(3 * ttl / 30)
		if !l.leading.Load() || other(l, a, b).leading.Load() {
			t.Fatalf("leadership moved without a failure (a %v, b %v)", a.leading.Load(), b.leading.Load())
		}
	}
	if all.overlap.Load() || l.terms.Load() != 1 {
		t.Fatalf("overlap %v, leader's terms %d; want one uninterrupted term", all.overlap.Load(), l.terms.Load())
	}
}

// TestEtcd_FailoverWithinTTL: the leader stops (resigns), its lease is
// revoked, or its client closes — fn's context is cancelled and the other
// elector leads within the TTL; never both at once.
func TestEtcd_FailoverWithinTTL(t *testing.T) {
	srv := etcdtest.Start(t)
	for name, fail := range map[string]func(t *testing.T, r *replica){
		"stop": func(t *testing.T, r *replica) { r.stop(t) },
		"revoke lease": func(t *testing.T, r *replica) {
			// The election keys carry the leases of the sessions.
			resp, err := r.client.Get(context.Background(), "/test/leader/", clientv3.WithFirstCreate()...)
			if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != r.name {
				t.Fatalf("leader key = %v, %v; want %s's", resp, err, r.name)
			}
			if _, err := r.client.Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
				t.Fatal(err)
			}
		},
		"close client": func(t *testing.T, r *replica) { _ = r.client.Close() },
	} {
		t.Run(name, func(t *testing.T) {
			var all campaigners
			a := startReplica(t, newClient(t, srv.Endpoints), "a", &all)
			b := startReplica(t, newClient(t, srv.Endpoints), "b", &all)
			l := awaitLeader(t, 5*time.Second, a, b)
			lost := l.lostCh()
			start := time.Now()
			fail(t, l)
			// The next leader within the TTL (plus scheduling slack on a
			// loaded machine).
			next := awaitLeader(t, 3*ttl, other(l, a, b))
			took := time.Since(start)
			select {
			case <-lost:
			case <-time.After(3 * ttl):
				t.Fatal("the old leader's fn context was not cancelled")
			}
			// A lease revoked from outside ends the old term and
			// starts the new one from the same deletion: there the
			// terms may touch for as long as the watch event takes.
			if all.overlap.Load() && name != "revoke lease" {
				t.Fatal("two electors ran fn at once")
			}
			t.Logf("%s: %s took over in %v", name, next.name, took)
		})
	}
}

func (r *replica) lostCh() chan struct{} {
	for range 100 {
		if r.leading.Load() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return *r.lost.Load()
}

// TestAlways runs fn once with the caller's context.
func TestAlways(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	cancel()
	leader.Always{}.Run(ctx, func(c context.Context) {
		calls++
		if c.Err() == nil {
			t.Error("fn's context is not the caller's")
		}
	})
	if calls != 1 {
		t.Fatalf("fn ran %d times; want 1", calls)
	}
}

// TestEtcd_StopsWhileEtcdIsDown: Run returns soon after its context ends
// even when etcd no longer answers, for the leader and for a replica
// still campaigning (shutdown must not wait for etcd).
func TestEtcd_StopsWhileEtcdIsDown(t *testing.T) {
	srv := etcdtest.Start(t)
	p := newProxy(t, srv.Endpoints[0])
	var all campaigners
	a := startReplica(t, newClient(t, []string{p.addr()}), "a", &all)
	b := startReplica(t, newClient(t, []string{p.addr()}), "b", &all)
	l := awaitLeader(t, 5*time.Second, a, b)
	time.Sleep(200 * time.Millisecond) // the other is campaigning
	p.close()
	for _, r := range []*replica{other(l, a, b), l} {
		start := time.Now()
		r.cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Run did not return within 5s of its context ending with etcd unreachable", r.name)
		}
		t.Logf("%s returned in %v", r.name, time.Since(start))
	}
}

// proxy forwards TCP connections to etcd until close, which cuts them
// off from etcd but leaves the clients' ends open, swallowing what they
// send, and refuses new ones: etcd hangs, as behind a partition.
type proxy struct {
	lis   net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{lis: lis}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); _, _ = io.Copy(io.Discard, c) }()
			go func() { _, _ = io.Copy(c, u) }()
		}
	}()
	t.Cleanup(func() { p.close(); p.release() })
	return p
}

func (p *proxy) addr() string { return p.lis.Addr().String() }

func (p *proxy) close() {
	_ = p.lis.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.conns {
		if i%2 == 1 { // etcd's end
			_ = c.Close()
		}
	}
}

// release closes the clients' ends too.
func (p *proxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// TestEtcd_PartitionedLeaderStepsDown: a leader cut off from etcd (its
// connection hangs) stops its work once its lease can no longer be
// renewed, and the replica that still reaches etcd takes over.
func TestEtcd_PartitionedLeaderStepsDown(t *testing.T) {
	srv := etcdtest.Start(t)
	p := newProxy(t, srv.Endpoints[0])
	var all campaigners
	a := startReplica(t, newClient(t, []string{p.addr()}), "a", &all)
	if awaitLeader(t, 5*time.Second, a) != a {
		t.Fatal("a does not lead alone")
	}
	b := startReplica(t, newClient(t, srv.Endpoints), "b", &all)
	time.Sleep(200 * time.Millisecond)
	if !a.leading.Load() || b.leading.Load() {
		t.Fatal("the leadership moved to a newcomer")
	}
	lost := a.lostCh()
	cut := time.Now()
	p.close()
	// etcd grants at least about 2s whatever the TTL asked: wait for a
	// few of those.
	select {
	case <-lost:
	case <-time.After(8 * time.Second):
		t.Fatal("the partitioned leader's fn context was not cancelled")
	}
	stepped := time.Since(cut)
	awaitLeader(t, 8*time.Second, b)
	t.Logf("a stepped down %v and b led %v after the partition", stepped, time.Since(cut))
}

// TestEtcd_TermFence: fn's context carries the term's store.Fence (the
// election key and its create revision). Its Lost closes when the term is
// lost (the lease revoked from outside), not when the leader shuts down:
// a stopping leader still holds its term until it resigns.
func TestEtcd_TermFence(t *testing.T) {
	srv := etcdtest.Start(t)
	c := newClient(t, srv.Endpoints)
	for _, how := range []string{"shutdown", "revoke"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fences := make(chan store.Fence, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				leader.NewEtcd(c, "/fence/"+how+"/", ttl, "a", nil).Run(ctx, func(lctx context.Context) {
					f, _ := store.FenceOf(lctx)
					fences <- f
					<-lctx.Done()
				})
			}()
			var f store.Fence
			select {
			case f = <-fences:
			case <-time.After(5 * time.Second):
				t.Fatal("no term")
			}
			resp, err := c.Get(context.Background(), f.Key)
			if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != f.Rev || string(resp.Kvs[0].Value) != "a" {
				t.Fatalf("fence %+v; election key = %v, %v", f, resp, err)
			}
			if f.Over() {
				t.Fatal("the fence of a live term is over")
			}
			if how == "shutdown" {
				cancel()
				<-done
				if f.Over() {
					t.Error("shutting down closed the fence's Lost")
				}
				return
			}
			if _, err := c.Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-f.Lost:
			case <-time.After(3 * ttl):
				t.Fatal("Lost not closed after the term's lease was revoked")
			}
		})
	}
}
