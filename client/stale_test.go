package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// startOnEtcd starts a server over an etcd store reached at endpoint,
// refusing decisions from data older than bound, and stops it when t
// ends. The store confirms its data every 50 ms and gives up on etcd
// after 2 s.
func startOnEtcd(t *testing.T, endpoint string, bound time.Duration) *gatehouse {
	t.Helper()
	st, err := etcd.Open(context.Background(), etcd.Options{Endpoints: []string{endpoint}, Prefix: "/client/",
		FreshnessInterval: 50 * time.Millisecond, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	snaps, err := replica.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	followed := make(chan struct{})
	go func() { defer close(followed); snaps.Run(ctx) }()
	srv := server.New(server.Options{Store: st, Snapshots: snaps, Logger: log, MaxStaleness: bound, Limits: server.Limits{QueueTarget: -1}})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	g := &gatehouse{addr: lis.Addr().String(), admin: gatehousev1.NewAdminServiceClient(conn), decide: gatehousev1.NewDecisionServiceClient(conn)}
	g.stop = func() {
		_ = conn.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		<-served
		cancel()
		<-followed
		_ = st.Close()
	}
	t.Cleanup(g.stop)
	return g
}

// TestStaleReplica_SentinelsAndLocalSession: a replica cut off from etcd
// refuses writes with ErrStoreUnavailable at once, and decisions with
// ErrSnapshotStale once its data is older than its bound (both also
// ErrUnavailable). A LocalSession whose policy comes from that replica
// stops deciding locally as soon as the replica ends its watch for
// staleness — although its own bound (10 s here) would have trusted the
// last heartbeat for longer —, and then denies with ErrPolicyUnavailable
// wrapping ErrSnapshotStale. When etcd is back, local answers resume.
func TestStaleReplica_SentinelsAndLocalSession(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	proxy := etcdtest.StartProxy(t, srv.Endpoints[0])
	const bound = time.Second
	g := startOnEtcd(t, proxy.Addr, bound)
	lg, _ := localFixture(t, g)
	c := dial(t, g.addr, client.WithMaxAttempts(1))
	const localBound = 10 * time.Second
	ls := openLocal(t, c, lg, agent, client.WithStaleness(localBound))
	chat := client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CHAT}
	sameAsServer(t, ls, g, chat)

	proxy.Cut()
	ctx := ctxT(t)
	// A write needs the store: refused at once (within the store's
	// request timeout), as a store that cannot be reached.
	_, err := c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE,
		RepresentativeID: "alice", CustomerID: "cust-2"})
	if !errors.Is(err, client.ErrStoreUnavailable) || !errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrSnapshotStale) {
		t.Fatalf("StartSession while etcd is cut off: %v; want ErrStoreUnavailable and ErrUnavailable", err)
	}
	// Decisions: refused once the data is older than the bound.
	deadline := time.Now().Add(10 * time.Second)
	var staleAt time.Time
	for {
		_, err := c.Check(ctx, client.CheckRequest{SessionID: lg, Actor: agent, Feature: gatehousev1.Feature_FEATURE_CHAT})
		if errors.Is(err, client.ErrSnapshotStale) {
			var ce *client.Error
			if !errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrStoreUnavailable) || !errors.As(err, &ce) || ce.Metadata["max_staleness"] != bound.String() {
				t.Fatalf("stale refusal: %v (%+v); want ErrSnapshotStale and ErrUnavailable only, with max_staleness %v", err, ce, bound)
			}
			staleAt = time.Now()
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("CheckFeature while etcd is cut off: %v; want an answer, then ErrSnapshotStale", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The local policy is that replica's data: it stops being used
	// promptly, not 10 s after the last heartbeat.
	for ls.Fresh() {
		if time.Since(staleAt) > 3*time.Second {
			t.Fatalf("the local policy is still used %v after the replica refused for staleness (local bound %v)", time.Since(staleAt), localBound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := ls.Stats()
	d, err := ls.Check(ctx, chat)
	if !errors.Is(err, client.ErrPolicyUnavailable) || !errors.Is(err, client.ErrSnapshotStale) || d.Allowed || d.Rule != client.RulePolicyUnavailable {
		t.Fatalf("local Check from a stale replica: %+v, %v; want a RulePolicyUnavailable denial wrapping ErrSnapshotStale", d, err)
	}
	if st := ls.Stats(); st.Local != before.Local || st.Failed != before.Failed+1 {
		t.Errorf("stats %+v after %+v; want one more failed check, no local one", st, before)
	}

	proxy.Restore()
	deadline = time.Now().Add(15 * time.Second)
	for !ls.Fresh() {
		if time.Now().After(deadline) {
			t.Fatal("the local policy did not come back after etcd did")
		}
		time.Sleep(50 * time.Millisecond)
	}
	sameAsServer(t, ls, g, chat)
}
