package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// testEnv is a real server on a loopback port over a real bbolt file.
type testEnv struct {
	t     testing.TB
	dir   string
	addr  string // the server's loopback address
	store *bolt.Store
	srv   *Server
	conn  *grpc.ClientConn
	stop  func()

	admin    gatehousev1.AdminServiceClient
	sessions gatehousev1.SessionServiceClient
	decide   gatehousev1.DecisionServiceClient
}

// MustStart starts a server over the store in dir (a new temp dir when
// empty) and stops it when the test ends.
func MustStart(t testing.TB, dir string, opts ...func(*Options)) *testEnv {
	t.Helper()
	// Every write's function runs twice, the first run rolled back, as
	// a store with optimistic concurrency may run it: writes must be pure
	// functions of what they read.
	return mustStartStore(t, dir, bolt.Options{RetryUpdates: 1}, opts...)
}

// mustStartStore is MustStart over a store opened with bo.
func mustStartStore(t testing.TB, dir string, bo bolt.Options, opts ...func(*Options)) *testEnv {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := bolt.OpenWith(dir, bo)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	e := mustStartOn(t, st, opts...)
	e.dir, e.store = dir, st
	return e
}

// mustStartOn starts a server over st (any driver), closing st when the
// test ends.
func mustStartOn(t testing.TB, st store.Store, opts ...func(*Options)) *testEnv {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	snaps, err := replica.New(ctx, st, log)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	followed := make(chan struct{})
	go func() { defer close(followed); snaps.Run(ctx) }()
	// Queue-delay shedding reacts to a loaded machine, which a test run
	// under -race on two cores is; tests about something else must not be
	// shed. The shedding tests turn it on (withLimits). So does the
	// per-caller CPU share, for the same reason.
	o := Options{Store: st, Snapshots: snaps, Logger: log, Limits: Limits{QueueTarget: -1, CallerCPUShare: -1}}
	for _, f := range opts {
		f(&o)
	}
	srv := New(o)
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
	e := &testEnv{
		t: t, addr: lis.Addr().String(), srv: srv, conn: conn,
		admin:    gatehousev1.NewAdminServiceClient(conn),
		sessions: gatehousev1.NewSessionServiceClient(conn),
		decide:   gatehousev1.NewDecisionServiceClient(conn),
	}
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = conn.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		cancel()
		<-followed
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	}
	t.Cleanup(e.stop)
	return e
}

// Restart stops the server and starts a new one over the same directory.
func (e *testEnv) Restart() *testEnv {
	e.t.Helper()
	e.stop()
	return MustStart(e.t, e.dir)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

// MustCreateAccount creates an account with a Live Guide representative
// "alice" and returns nothing but fails the test on error.
func (e *testEnv) MustCreateAccount(id string) {
	e.t.Helper()
	ctx := ctxT(e.t)
	if _, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: id, DisplayName: "Account " + id}}); err != nil {
		e.t.Fatalf("CreateAccount(%s): %v", id, err)
	}
	if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: id,
		Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}}); err != nil {
		e.t.Fatalf("CreateRepresentative: %v", err)
	}
}

// MustStartSession starts a Live Guide session for alice and customer cust-1.
func (e *testEnv) MustStartSession(acct string) *gatehousev1.Session {
	e.t.Helper()
	resp, err := e.sessions.StartSession(ctxT(e.t), &gatehousev1.StartSessionRequest{
		AccountId: acct, Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
	if err != nil {
		e.t.Fatalf("StartSession: %v", err)
	}
	return resp.GetSession()
}

// MustUpdateSettings sets the named settings fields from s.
func (e *testEnv) MustUpdateSettings(s *gatehousev1.LiveGuideSettings, paths ...string) *gatehousev1.LiveGuideSettings {
	e.t.Helper()
	resp, err := e.admin.UpdateLiveGuideSettings(ctxT(e.t), &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: s, UpdateMask: mask(paths...)})
	if err != nil {
		e.t.Fatalf("UpdateLiveGuideSettings: %v", err)
	}
	return resp.GetSettings()
}

// MustCheck asks one question and returns the decision.
func (e *testEnv) MustCheck(req *gatehousev1.CheckFeatureRequest) *gatehousev1.CheckFeatureResponse {
	e.t.Helper()
	resp, err := e.decide.CheckFeature(ctxT(e.t), req)
	if err != nil {
		e.t.Fatalf("CheckFeature(%v): %v", req, err)
	}
	return resp
}

func agent(id string) *gatehousev1.Actor {
	return &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: id}
}

func customer(id string) *gatehousev1.Actor {
	return &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_CUSTOMER, Id: id}
}

// wantCode fails unless err has the given code; it returns the status.
func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st, _ := status.FromError(asWire(err))
	if st.Code() != code {
		t.Fatalf("got %v (%v), want code %v", st.Code(), err, code)
	}
	return st
}

// fieldViolations returns the fields named by the BadRequest detail.
func fieldViolations(st *status.Status) []string {
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

// errorReason returns the ErrorInfo reason of a status, or "".
func errorReason(st *status.Status) string {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

// wantInvalid fails unless err is INVALID_ARGUMENT naming every field.
func wantInvalid(t *testing.T, err error, fields ...string) {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	got := fieldViolations(st)
	for _, f := range fields {
		if !slices.Contains(got, f) {
			t.Fatalf("violations %v do not name %q (%v)", got, f, err)
		}
	}
	if len(got) == 0 {
		t.Fatalf("INVALID_ARGUMENT without field violations: %v", err)
	}
}

func statusCode(err error) codes.Code { return status.Code(asWire(err)) }

// asWire maps err as the server's interceptors do, for tests that call a
// handler directly rather than through a gRPC connection.
func asWire(err error) error {
	if err == nil {
		return nil
	}
	return mapError(context.Background(), slog.New(slog.DiscardHandler), err)
}

// errorMeta returns the ErrorInfo metadata of a status.
func errorMeta(st *status.Status) map[string]string {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetMetadata()
		}
	}
	return nil
}
