package client_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc"
)

// TestLocalSession_ReconnectsAfterRestart: the server stops (the watch
// breaks with UNAVAILABLE) and comes back on the same address and store.
// Meanwhile the client retries with backoff — a handful of attempts, not a
// busy loop —, answers locally while the policy is within the bound, then
// denies with ErrPolicyUnavailable; once the server is back, the reopened
// watch brings the current policy and a write made after the restart
// reaches the local answers.
func TestLocalSession_ReconnectsAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g, err := startGatehouse(dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	stop := g.stop
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if stop != nil {
			stop()
		}
	})
	lg, _ := localFixture(t, g)
	ctx := ctxT(t)

	var opened atomic.Int64 // WatchSessionPolicy streams the client opened
	count := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if method == gatehousev1.DecisionService_WatchSessionPolicy_FullMethodName {
			opened.Add(1)
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
	c := dial(t, g.addr, client.WithDialOptions(grpc.WithStreamInterceptor(count)), client.WithMaxAttempts(1))
	const bound = 1500 * time.Millisecond
	ls := openLocal(t, c, lg, agent, client.WithStaleness(bound), client.WithReconnect(20*time.Millisecond, 300*time.Millisecond))
	chat := client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CHAT}
	sameAsServer(t, ls, g, chat)

	mu.Lock()
	stop()
	stop = nil
	mu.Unlock()
	before := opened.Load()
	// Still within the bound (unless the shutdown took that long): the
	// policy heard last answers, locally.
	if ls.Fresh() {
		local := ls.Stats().Local
		if d, err := ls.Check(ctx, chat); err != nil || !d.Allowed || ls.Stats().Local != local+1 {
			t.Fatalf("watch broken, policy within the bound: %+v, %v, %+v; want a local allow", d, err, ls.Stats())
		}
	}
	const outage = 2 * time.Second
	time.Sleep(outage) // past the bound
	d, err := ls.Check(ctx, chat)
	if d.Allowed || d.Rule != client.RulePolicyUnavailable || !errors.Is(err, client.ErrPolicyUnavailable) || !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("server down, policy stale: %+v, %v; want a %s denial", d, err, client.RulePolicyUnavailable)
	}
	// Backoff from 20 ms doubling to 300 ms: about 10 attempts in 2 s.
	if n := opened.Load() - before; n < 3 || n > 30 {
		t.Fatalf("%d watch attempts during a %v outage; want a backoff's handful", n, outage)
	}

	g2, err := startGatehouseAt(dir, g.addr, false, nil)
	if err != nil {
		t.Fatalf("restart on %s: %v", g.addr, err)
	}
	mu.Lock()
	stop = g2.stop
	mu.Unlock()
	resp, err := g2.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme"}, UpdateMask: mask("chat")})
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.WaitRevision(ctx, resp.GetSettings().GetRevision()); err != nil {
		t.Fatalf("the write after the restart did not reach the watch: %v", err)
	}
	for !ls.Fresh() {
		if ctx.Err() != nil {
			t.Fatal("not fresh after the reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := sameAsServer(t, ls, g2, chat); d.Allowed || d.Rule != "chat" {
		t.Fatalf("chat after the write: %+v; want denied by the chat switch", d)
	}
}
