package server

import (
	"context"
	"net"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// TestServerOverhead_AllocationsOverBareGRPC measures what the server adds
// to a call over grpc-go itself, as allocations per call of the whole
// process (client and server; the client is the same for both servers, so
// the difference is the server's): the daemon with its default options
// (queue shedding on, no metrics, no tracing, no authentication) against a
// bare grpc-go server with default options and no interceptors, over
// loopback TCP, for
//
//   - a health check, against the bare server's standard health service:
//     the per-call options the daemon installs for every call (the tap, the
//     interceptors; a stats handler would add a copy of the call's metadata
//     and a stats event per step of the call) cost a health check nothing;
//   - a CheckFeature with an element and ancestors, against a bare server
//     that decodes the same request and answers a fixed decision: what the
//     daemon adds (validation, the query, the caller in the context, the
//     decision and its answer) is a few allocations, not a multiple of
//     grpc-go's.
func TestServerOverhead_AllocationsOverBareGRPC(t *testing.T) {
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	req := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"),
		Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/checkout",
		Element: &gatehousev1.Element{Tag: "button", Classes: []string{"pay", "primary"}, Attributes: map[string]string{"type": "submit"},
			Ancestors: []*gatehousev1.ElementNode{
				{Tag: "div", Classes: []string{"row"}},
				{Tag: "form", Id: "pay-form", Classes: []string{"checkout"}, Attributes: map[string]string{"data-step": "2"}},
				{Tag: "main"}, {Tag: "body", Classes: []string{"logged-in"}, Attributes: map[string]string{"data-page": "app"}},
			}}}
	want, err := e.decide.CheckFeature(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	bare := startBareServer(t, &fixedDecisions{resp: want})
	ctx := ctxT(t)
	calls := map[string]func() error{
		"bare health": func() error {
			_, err := healthpb.NewHealthClient(bare).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		},
		"health": func() error {
			_, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		},
		"bare CheckFeature": func() error {
			_, err := gatehousev1.NewDecisionServiceClient(bare).CheckFeature(ctx, req)
			return err
		},
		"CheckFeature": func() error {
			resp, err := e.decide.CheckFeature(ctx, req)
			if err == nil && !proto.Equal(resp, want) {
				t.Fatalf("CheckFeature answered %v, want %v", resp, want)
			}
			return err
		},
	}
	allocs := map[string]float64{}
	for name, call := range calls {
		for range 50 { // connections, stream quotas, pools
			if err := call(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		allocs[name] = testing.AllocsPerRun(500, func() {
			if err := call(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		})
	}
	t.Logf("allocations per call: %v", allocs)
	// Under the race detector sync.Pool drops items at random, so grpc-go's
	// buffer pools allocate a little more, and not the same for each server.
	slack := 0.0
	if raceEnabled {
		slack = 3
	}
	// A health check: grpc-go allocates, per call, the UnaryServerInfo and
	// a handler closure for any interceptor, one closure more for a chain
	// of them (the call interceptor, then the load limits), and a tap.Info
	// for the tap (which stamps nothing for health): 4.
	const maxHealthAllocs = 4
	if d := allocs["health"] - allocs["bare health"]; d > maxHealthAllocs+slack {
		t.Errorf("a health check allocates %v times per call more than on a bare grpc-go server (%v), want at most %d", d, allocs, maxHealthAllocs)
	}
	// A decision: those 4, the arrival stamp, the caller in the context
	// (2), the element and ancestors of the query (2), the answer and its
	// decision (2; the bare server answers a ready one): 11.
	const maxDecisionAllocs = 11
	if d := allocs["CheckFeature"] - allocs["bare CheckFeature"]; d > maxDecisionAllocs+slack {
		t.Errorf("a CheckFeature allocates %v times per call more than decoding and answering it on a bare grpc-go server (%v), want at most %d", d, allocs, maxDecisionAllocs)
	}
}

// fixedDecisions answers every CheckFeature with resp, without looking.
type fixedDecisions struct {
	gatehousev1.UnimplementedDecisionServiceServer
	resp *gatehousev1.CheckFeatureResponse
}

func (f *fixedDecisions) CheckFeature(context.Context, *gatehousev1.CheckFeatureRequest) (*gatehousev1.CheckFeatureResponse, error) {
	return f.resp, nil
}

// startBareServer serves the standard health service and decisions on a
// grpc-go server with default options and no interceptors, and returns a
// client connection to it.
func startBareServer(t testing.TB, decisions gatehousev1.DecisionServiceServer) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	gatehousev1.RegisterDecisionServiceServer(s, decisions)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
