package main

import (
	"context"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// TestE2E_StreamFlags: --max-streams (from the command line) and
// --max-meta-streams and --reflection (from GATEHOUSE_ variables) reach
// the server: one watch and one health watch fit, the next of each is
// RESOURCE_EXHAUSTED, and reflection is not served.
func TestE2E_StreamFlags(t *testing.T) {
	t.Parallel()
	d := start(t, []string{"GATEHOUSE_MAX_META_STREAMS=1", "GATEHOUSE_REFLECTION=off"},
		loopbackArgs(t.TempDir(), "--max-streams", "1")...)
	c := dial(t, d.addr)
	sess := setupSessionIn(t, c, "acme")
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	watch := func() error {
		w, err := c.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: sess, Actor: agent("alice")})
		if err == nil {
			_, err = w.Recv()
		}
		return err
	}
	healthWatch := func() error {
		w, err := c.health.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = w.Recv()
		}
		return err
	}
	if err := watch(); err != nil {
		t.Fatalf("first watch: %v", err)
	}
	wantCode(t, "a second watch with --max-streams 1", watch(), codes.ResourceExhausted)
	if err := healthWatch(); err != nil {
		t.Fatalf("first health watch: %v", err)
	}
	wantCode(t, "a second health watch with GATEHOUSE_MAX_META_STREAMS=1", healthWatch(), codes.ResourceExhausted)
	r, err := reflectionpb.NewServerReflectionClient(c.conn).ServerReflectionInfo(ctx)
	if err == nil {
		// Send may already see the stream ended (io.EOF); Recv has why.
		_ = r.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
		_, err = r.Recv()
	}
	wantCode(t, "reflection with GATEHOUSE_REFLECTION=off", err, codes.Unimplemented)
}
