package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// gatehouse is a real Gatehouse server on a loopback port over a bbolt
// file, with an admin connection to set it up.
type gatehouse struct {
	addr   string
	bearer string // operator token when started with authentication
	admin  gatehousev1.AdminServiceClient
	decide gatehousev1.DecisionServiceClient // the generated client, to compare with
	stop   func()
	store  *bolt.Store // to write records the API refuses (damaged data)
}

// startGatehouse starts a server over a store in dir; mod adjusts its
// options, auth turns authentication on with a bootstrap operator token.
func startGatehouse(dir string, auth bool, mod func(*server.Options)) (*gatehouse, error) {
	return startGatehouseAt(dir, "127.0.0.1:0", auth, mod)
}

// startGatehouseAt is startGatehouse listening on addr (to restart a
// server where it was).
func startGatehouseAt(dir, addr string, auth bool, mod func(*server.Options)) (*gatehouse, error) {
	st, err := bolt.Open(dir)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	snaps, err := replica.New(ctx, st, log)
	if err != nil {
		cancel()
		_ = st.Close()
		return nil, err
	}
	followed := make(chan struct{})
	go func() { defer close(followed); snaps.Run(ctx) }()
	abort := func(err error) (*gatehouse, error) {
		cancel()
		<-followed
		_ = st.Close()
		return nil, err
	}
	g := &gatehouse{store: st}
	// Queue-delay shedding reacts to a loaded machine, which a test run
	// under -race on two cores is; these tests are about something else.
	o := server.Options{Store: st, Snapshots: snaps, Logger: log, Authenticate: auth, Limits: server.Limits{QueueTarget: -1}}
	if auth {
		if g.bearer, _, err = server.BootstrapOperatorToken(ctx, st, "test operator", time.Now()); err != nil {
			return abort(err)
		}
		// The first call must find the token: wait until the snapshot
		// holds the commit that wrote it.
		if _, err = snaps.WaitFor(ctx, st.Revision()); err != nil {
			return abort(err)
		}
	}
	if mod != nil {
		mod(&o)
	}
	srv := server.New(o)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return abort(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	g.addr = lis.Addr().String()
	conn, err := grpc.NewClient(g.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if g.bearer != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+g.bearer)
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
	if err != nil {
		srv.Shutdown(context.Background())
		<-served
		return abort(err)
	}
	g.admin = gatehousev1.NewAdminServiceClient(conn)
	g.decide = gatehousev1.NewDecisionServiceClient(conn)
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
	return g, nil
}

// mustStart starts a server for t and stops it when t ends.
func mustStart(t testing.TB, auth bool, mod func(*server.Options)) *gatehouse {
	t.Helper()
	g, err := startGatehouse(t.TempDir(), auth, mod)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(g.stop)
	return g
}

// allOn has every support function on.
func allOn() *gatehousev1.SupportFunctions {
	return &gatehousev1.SupportFunctions{CustomerScreenSharing: true, RepScreenSharing: true, RecordCustomerScreen: true, RecordRepScreen: true,
		SendFiles: true, ReceiveFiles: true, RunAsService: true, StartAsService: true, UninstallServiceOnEnd: true, ChatReceiptSound: true,
		Annotations: true, InviteExternalSpecialist: true}
}

// fixture builds account acme with Live Guide representative "alice", top
// portal "corp" with subportal "corp-eu", team "support" at corp and
// support representative "bob" (not enabled for Live Guide).
func (g *gatehouse) fixture(ctx context.Context) error {
	steps := []func() error{
		func() error {
			_, err := g.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}})
			return err
		},
		func() error {
			_, err := g.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp", Name: "Corp", Functions: allOn()}})
			return err
		},
		func() error {
			_, err := g.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp-eu", ParentId: "corp", Name: "EU", Functions: allOn()}})
			return err
		},
		func() error {
			_, err := g.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Id: "support", Name: "Support", PortalId: "corp"}})
			return err
		},
		func() error {
			_, err := g.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
				Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}})
			return err
		},
		func() error {
			_, err := g.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
				Representative: &gatehousev1.Representative{Id: "bob", DisplayName: "Bob", TeamId: "support", Functions: allOn()}})
			return err
		},
	}
	for i, f := range steps {
		if err := f(); err != nil {
			return fmt.Errorf("fixture step %d: %w", i, err)
		}
	}
	return nil
}

func mustFixture(t testing.TB, g *gatehouse) {
	t.Helper()
	if err := g.fixture(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
