package server

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// implemented lists the RPCs this version serves; every other RPC of the
// contract must answer UNIMPLEMENTED, never a made-up answer.
var implemented = map[string]bool{
	"CreateAccount": true, "GetAccount": true, "ListAccounts": true, "UpdateAccount": true, "DeleteAccount": true,
	"GetLiveGuideSettings": true, "UpdateLiveGuideSettings": true,
	"CreateRepresentative": true, "GetRepresentative": true, "ListRepresentatives": true, "UpdateRepresentative": true, "DeleteRepresentative": true,
	"StartSession": true, "GetSession": true, "EndSession": true,
	"CheckFeature": true, "CheckFeatures": true,
	"GetCustomization": true, "UpdateCustomization": true,
	"GenerateCobrowseUrl": true, "SetCobrowseUrl": true,
	"CreateAllowlistEntry": true, "GetAllowlistEntry": true, "ListAllowlistEntries": true, "UpdateAllowlistEntry": true, "DeleteAllowlistEntry": true,
	"GetSessionPolicy": true, "WatchSessionPolicy": true,
	"CreatePortal": true, "GetPortal": true, "ListPortals": true, "UpdatePortal": true, "DeletePortal": true,
	"CreateTeam": true, "GetTeam": true, "ListTeams": true, "UpdateTeam": true, "DeleteTeam": true,
	"CreateBusinessHours": true, "GetBusinessHours": true, "ListBusinessHours": true, "UpdateBusinessHours": true, "DeleteBusinessHours": true,
	"InviteExternalSpecialist": true, "RemoveExternalSpecialist": true, "ListSessions": true,
	"CreateCallerToken": true, "ListCallerTokens": true, "RevokeCallerToken": true,
	"ListAuditEvents": true, "BackupStore": true,
	"ListNotifications": true, "RetryNotification": true, "DeleteNotification": true,
	"TestAllowlistUrl": true, "GetBusinessHoursStatus": true,
	"CreatePrivacyRule": true, "GetPrivacyRule": true, "ListPrivacyRules": true, "UpdatePrivacyRule": true, "DeletePrivacyRule": true,
	"ExportAccount": true, "ApplyAccount": true, "CheckHypothetical": true,
}

// services are the API's service descriptors.
var services = []protoreflect.ServiceDescriptor{
	gatehousev1.File_gatehouse_v1_admin_service_proto.Services().Get(0),
	gatehousev1.File_gatehouse_v1_session_service_proto.Services().Get(0),
	gatehousev1.File_gatehouse_v1_decision_service_proto.Services().Get(0),
}

// TestEveryRPC_EmptyRequest calls every RPC of the contract with an empty
// request: implemented ones must reject it as invalid (or not found), the
// others must answer UNIMPLEMENTED. Nothing may answer INTERNAL or crash.
func TestEveryRPC_EmptyRequest(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	seen := map[string]bool{}
	for _, sd := range services {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			name := string(md.Name())
			seen[name] = true
			t.Run(name, func(t *testing.T) {
				full := "/" + string(sd.FullName()) + "/" + name
				req := dynamicpb.NewMessage(md.Input())
				var err error
				if md.IsStreamingServer() {
					var cs grpc.ClientStream
					cs, err = e.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, full)
					if err == nil {
						if err = cs.SendMsg(req); err == nil {
							_ = cs.CloseSend()
							err = cs.RecvMsg(dynamicpb.NewMessage(md.Output()))
						}
					}
				} else {
					err = e.conn.Invoke(ctx, full, req, dynamicpb.NewMessage(md.Output()))
				}
				code := status.Code(err)
				if !implemented[name] {
					if code != codes.Unimplemented {
						t.Fatalf("%s: got %v (%v), want Unimplemented", name, code, err)
					}
					return
				}
				if name == "ListAccounts" || name == "ListCallerTokens" || name == "ListAuditEvents" || name == "ListNotifications" || name == "BackupStore" { // empty requests that are valid
					if err != nil {
						t.Fatalf("%s{}: %v", name, err)
					}
					return
				}
				if code != codes.InvalidArgument {
					t.Fatalf("%s with an empty request: got %v (%v), want InvalidArgument", name, code, err)
				}
				if len(fieldViolations(status.Convert(err))) == 0 {
					t.Fatalf("%s: no field violations in %v", name, err)
				}
			})
		}
	}
	for name := range implemented {
		if !seen[name] {
			t.Errorf("implemented RPC %s is not in the contract", name)
		}
	}
}

// TestEnums_MatchWire checks that the engine's enum values equal the wire
// values, which convert.go relies on.
func TestEnums_MatchWire(t *testing.T) {
	t.Parallel()
	fvals := gatehousev1.Feature(0).Descriptor().Values()
	for i := range fvals.Len() {
		v := fvals.Get(i)
		f := policy.Feature(v.Number())
		if v.Number() == 0 {
			if f.Valid() {
				t.Errorf("FEATURE_UNSPECIFIED is valid")
			}
			continue
		}
		if !f.Valid() {
			t.Errorf("%s (%d) is not a valid policy.Feature", v.Name(), v.Number())
		}
		if want := strings.ToLower(strings.TrimPrefix(string(v.Name()), "FEATURE_")); f.String() != want {
			t.Errorf("%s: String() = %q, want %q", v.Name(), f.String(), want)
		}
		fn, isFunc := f.Function()
		if isFunc == f.IsCobrowse() {
			t.Errorf("%s: cobrowse=%v function=%v", v.Name(), f.IsCobrowse(), isFunc)
		}
		if isFunc {
			// SupportFunctions field n+1 is named like the enum value.
			field := functionsDesc.ByNumber(protoreflect.FieldNumber(fn + 1))
			if want := strings.ToLower(strings.TrimPrefix(string(v.Name()), "FEATURE_")); string(field.Name()) != want {
				t.Errorf("function %d: field %s, enum %s", fn, field.Name(), v.Name())
			}
		}
	}
	if n := functionsDesc.Len(); n != int(policy.NumFunctions) {
		t.Errorf("SupportFunctions has %d fields, policy has %d functions", n, policy.NumFunctions)
	}
	rvals := gatehousev1.Reason(0).Descriptor().Values()
	for i := range rvals.Len() {
		v := rvals.Get(i)
		r := policy.Reason(v.Number())
		if v.Number() != 0 && r.Message() == policy.ReasonUnspecified.Message() {
			t.Errorf("%s has no message", v.Name())
		}
		if want := strings.ToLower(strings.TrimPrefix(string(v.Name()), "REASON_")); r.String() != want {
			t.Errorf("%s: String() = %q, want %q", v.Name(), r.String(), want)
		}
	}
	pairs := []struct {
		name       string
		wire, pure int
	}{
		{"ROLE_AGENT", int(gatehousev1.Role_ROLE_AGENT), int(policy.RoleAgent)},
		{"ROLE_CUSTOMER", int(gatehousev1.Role_ROLE_CUSTOMER), int(policy.RoleCustomer)},
		{"ROLE_EXTERNAL_SPECIALIST", int(gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST), int(policy.RoleExternalSpecialist)},
		{"FRAME_TOP_LEVEL", int(gatehousev1.Frame_FRAME_TOP_LEVEL), int(policy.FrameTopLevel)},
		{"FRAME_IFRAME", int(gatehousev1.Frame_FRAME_IFRAME), int(policy.FrameIframe)},
		{"SESSION_KIND_LIVE_GUIDE", int(gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE), int(policy.SessionKindLiveGuide)},
		{"SESSION_KIND_SUPPORT", int(gatehousev1.SessionKind_SESSION_KIND_SUPPORT), int(policy.SessionKindSupport)},
		{"SESSION_STATE_ACTIVE", int(gatehousev1.SessionState_SESSION_STATE_ACTIVE), int(policy.SessionStateActive)},
		{"SESSION_STATE_ENDED", int(gatehousev1.SessionState_SESSION_STATE_ENDED), int(policy.SessionStateEnded)},
		{"REASON_REPRESENTATIVE_FUNCTION_DISABLED", int(gatehousev1.Reason_REASON_REPRESENTATIVE_FUNCTION_DISABLED), int(policy.ReasonRepresentativeFunctionDisabled)},
		{"REASON_AGENT_CLICK_RESTRICTED", int(gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED), int(policy.ReasonAgentClickRestricted)},
	}
	for _, p := range pairs {
		if p.wire != p.pure {
			t.Errorf("%s: wire %d, policy %d", p.name, p.wire, p.pure)
		}
	}
}

// TestServer_PanicBecomesInternal registers a unary and a stream handler
// that panic: the call gets INTERNAL, the panic is logged with its stack,
// and the server keeps serving.
func TestServer_PanicBecomesInternal(t *testing.T) {
	t.Parallel()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	snaps, err := replica.New(context.Background(), st, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Store: st, Snapshots: snaps, Logger: log})
	srv.rules = maps.Clone(srv.rules)
	srv.rules["/test.Panicker/Panic"] = access{role: auth.RoleDecider}
	srv.rules["/test.Panicker/PanicStream"] = access{role: auth.RoleDecider}
	srv.grpc.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Panicker",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Panic", Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := &emptypb.Empty{}
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) { panic("boom") }
			if in == nil {
				return h(ctx, req)
			}
			return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/test.Panicker/Panic"}, h)
		}}},
		Streams: []grpc.StreamDesc{{StreamName: "PanicStream", ServerStreams: true, Handler: func(any, grpc.ServerStream) error { panic("stream boom") }}},
	}, struct{}{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Shutdown(context.Background())
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := ctxT(t)
	for range 2 {
		err = conn.Invoke(ctx, "/test.Panicker/Panic", &emptypb.Empty{}, &emptypb.Empty{})
		if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "boom") {
			t.Fatalf("panic answered %v; want INTERNAL without the panic value", err)
		}
	}
	for range 2 {
		cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/test.Panicker/PanicStream")
		if err != nil {
			t.Fatal(err)
		}
		if err := cs.SendMsg(&emptypb.Empty{}); err != nil {
			t.Fatal(err)
		}
		_ = cs.CloseSend()
		err = cs.RecvMsg(&emptypb.Empty{})
		if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "boom") {
			t.Fatalf("stream panic answered %v; want INTERNAL without the panic value", err)
		}
	}
	if _, err := gatehousev1.NewAdminServiceClient(conn).ListAccounts(ctx, &gatehousev1.ListAccountsRequest{}); err != nil {
		t.Fatalf("server stopped serving after a panic: %v", err)
	}
	for _, want := range []string{`"panic":"boom"`, `"panic":"stream boom"`, `"stack":"goroutine `} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log has no %s:\n%s", want, logs.String())
		}
	}
}
