package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// authEnv is a server that requires bearer tokens, with accounts a and b
// (each with a Live Guide session and a support session) and tokens of
// every kind.
type authEnv struct {
	*testEnv
	tokens   map[string]string // name -> bearer
	sessions map[string]string // "a", "a-support", "b", "b-support" -> session id
	// notifications holds, per account, the id of a queued notification.
	notifications map[string]string
}

func withToken(ctx context.Context, bearer string) context.Context {
	if bearer == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+bearer)
}

func mustStartAuth(t *testing.T, opts ...func(*Options)) *authEnv {
	t.Helper()
	e := MustStart(t, "", append([]func(*Options){func(o *Options) { o.Authenticate = true }}, opts...)...)
	op, created, err := service.BootstrapOperatorToken(context.Background(), e.store, "bootstrap", time.Now())
	if err != nil || !created {
		t.Fatalf("bootstrap: %v %v", created, err)
	}
	if _, again, _ := service.BootstrapOperatorToken(context.Background(), e.store, "bootstrap", time.Now()); again {
		t.Fatal("a second bootstrap token was created")
	}
	if _, err := e.srv.snaps.WaitFor(ctxT(t), e.store.Revision()); err != nil {
		t.Fatal(err)
	}
	ae := &authEnv{testEnv: e, tokens: map[string]string{"operator": op}, sessions: map[string]string{}, notifications: map[string]string{}}
	ctx := withToken(ctxT(t), op)
	for _, acct := range []string{"a", "b"} {
		calls := []func() error{
			func() error {
				_, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: acct, DisplayName: acct}})
				return err
			},
			func() error {
				_, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: acct, Portal: &gatehousev1.Portal{Id: "top", Name: "Top", Functions: allOn()}})
				return err
			},
			func() error {
				_, err := e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: acct, Team: &gatehousev1.Team{Id: "team", Name: "Team", PortalId: "top"}})
				return err
			},
			func() error {
				_, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: acct,
					Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", TeamId: "team", LiveGuideEnabled: true, Functions: allOn()}})
				return err
			},
		}
		for _, call := range calls {
			if err := call(); err != nil {
				t.Fatalf("fixture for %s: %v", acct, err)
			}
		}
		lg, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: acct, Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust"})
		if err != nil {
			t.Fatal(err)
		}
		sup, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: acct, Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: "alice", CustomerId: "cust", PortalId: "top-default"})
		if err != nil {
			t.Fatal(err)
		}
		ae.sessions[acct] = lg.GetSession().GetId()
		ae.sessions[acct+"-support"] = sup.GetSession().GetId()
		if _, err := e.store.Update(ctx, func(tx store.Tx) error {
			m := store.OutboxMessage{AccountID: acct, SessionID: "s-ended-" + acct, To: "ops@example.com", XML: "<r/>", Created: time.Now().UTC()}
			if err := store.EnqueueOutbox(tx, &m); err != nil {
				return err
			}
			ae.notifications[acct] = m.ID
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for name, tok := range map[string]*gatehousev1.CallerToken{
		"decider-a":   {Name: "decider a", Role: gatehousev1.CallerRole_CALLER_ROLE_DECIDER, AccountId: "a"},
		"admin-a":     {Name: "admin a", Role: gatehousev1.CallerRole_CALLER_ROLE_ADMIN, AccountId: "a"},
		"admin-all":   {Name: "admin all", Role: gatehousev1.CallerRole_CALLER_ROLE_ADMIN},
		"decider-all": {Name: "decider all", Role: gatehousev1.CallerRole_CALLER_ROLE_DECIDER},
	} {
		resp, err := e.admin.CreateCallerToken(ctx, &gatehousev1.CreateCallerTokenRequest{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(resp.GetBearer(), "gh_") || resp.GetToken().GetId() == "" {
			t.Fatalf("token = %v", resp)
		}
		ae.tokens[name] = resp.GetBearer()
	}
	return ae
}

// request builds a request for md aimed at account acct: the access rule's
// account field is set, and session-addressed RPCs get a complete, valid
// request for that account's session.
func (e *authEnv) request(t *testing.T, md protoreflect.MethodDescriptor, acct string) proto.Message {
	t.Helper()
	lg, sup := e.sessions[acct], e.sessions[acct+"-support"]
	actor := agent("alice")
	switch md.Name() {
	case "GetSession":
		return &gatehousev1.GetSessionRequest{SessionId: lg}
	case "EndSession":
		return &gatehousev1.EndSessionRequest{SessionId: lg}
	case "InviteExternalSpecialist":
		return &gatehousev1.InviteExternalSpecialistRequest{SessionId: sup, SpecialistId: "spec", DisplayName: "Spec"}
	case "RemoveExternalSpecialist":
		return &gatehousev1.RemoveExternalSpecialistRequest{SessionId: sup, SpecialistId: "spec"}
	case "CheckFeature":
		return &gatehousev1.CheckFeatureRequest{SessionId: lg, Actor: actor, Feature: gatehousev1.Feature_FEATURE_CHAT}
	case "CheckFeatures":
		return &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{
			{SessionId: e.sessions["a"], Actor: actor, Feature: gatehousev1.Feature_FEATURE_CHAT},
			{SessionId: lg, Actor: actor, Feature: gatehousev1.Feature_FEATURE_CHAT}}}
	case "GetSessionPolicy":
		return &gatehousev1.GetSessionPolicyRequest{SessionId: lg, Actor: actor}
	case "WatchSessionPolicy":
		return &gatehousev1.WatchSessionPolicyRequest{SessionId: lg, Actor: actor}
	case "RetryNotification":
		return &gatehousev1.RetryNotificationRequest{Id: e.notifications[acct]}
	case "DeleteNotification":
		return &gatehousev1.DeleteNotificationRequest{Id: e.notifications[acct]}
	}
	req := dynamicpb.NewMessage(md.Input())
	rule := accessRules["/"+string(md.Parent().FullName())+"/"+string(md.Name())]
	if rule.account != "" {
		setPath(req, rule.account, acct)
	}
	return req
}

// setPath sets the string field at a dotted path, creating messages on the way.
func setPath(m protoreflect.ProtoMessage, path, value string) {
	r := m.ProtoReflect()
	parts := strings.Split(path, ".")
	for _, name := range parts[:len(parts)-1] {
		r = r.Mutable(r.Descriptor().Fields().ByName(protoreflect.Name(name))).Message()
	}
	r.Set(r.Descriptor().Fields().ByName(protoreflect.Name(parts[len(parts)-1])), protoreflect.ValueOfString(value))
}

func (e *authEnv) call(ctx context.Context, md protoreflect.MethodDescriptor, bearer string, req proto.Message) error {
	full := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	ctx = withToken(ctx, bearer)
	out := dynamicpb.NewMessage(md.Output())
	if md.IsStreamingServer() {
		cs, err := e.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, full)
		if err != nil {
			return err
		}
		if err := cs.SendMsg(req); err != nil {
			return err
		}
		_ = cs.CloseSend()
		return cs.RecvMsg(out)
	}
	return e.conn.Invoke(ctx, full, req, out)
}

// TestAuthz_EveryRPC enumerates the service descriptors: every RPC has an
// access rule; without a token or with a bad one it is UNAUTHENTICATED; a
// caller of the wrong role, or scoped to account a asking about account b,
// gets PERMISSION_DENIED (and no data); store-wide RPCs refuse scoped
// callers; the right caller gets past authorization.
func TestAuthz_EveryRPC(t *testing.T) {
	t.Parallel()
	e := mustStartAuth(t)
	ctx := ctxT(t)
	for _, sd := range services {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			full := "/" + string(sd.FullName()) + "/" + string(md.Name())
			t.Run(string(md.Name()), func(t *testing.T) {
				rule, ok := accessRules[full]
				if !ok {
					t.Fatalf("%s has no access rule", full)
				}
				reqB := e.request(t, md, "b")
				for _, bearer := range []string{"", "gh_nope_nope", "garbage", e.tokens["operator"] + "x"} {
					if code := status.Code(e.call(ctx, md, bearer, reqB)); code != codes.Unauthenticated {
						t.Errorf("bearer %q: %v, want Unauthenticated", bearer, code)
					}
				}
				// Wrong role, whatever the scope.
				wrong := "decider-all"
				if rule.role == auth.RoleDecider {
					wrong = "admin-all"
				}
				if rule.role != auth.RoleOperator {
					if code := status.Code(e.call(ctx, md, e.tokens[wrong], reqB)); code != codes.PermissionDenied {
						t.Errorf("%s with role %s: %v, want PermissionDenied", md.Name(), wrong, code)
					}
				}
				// Right role, scoped to the other account.
				scoped := "admin-a"
				if rule.role == auth.RoleDecider {
					scoped = "decider-a"
				}
				err := e.call(ctx, md, e.tokens[scoped], reqB)
				if code := status.Code(err); code != codes.PermissionDenied {
					t.Errorf("%s by %s for account b: %v (%v), want PermissionDenied", md.Name(), scoped, code, err)
				}
				// The operator gets past authorization (the request may still
				// be incomplete).
				err = e.call(ctx, md, e.tokens["operator"], reqB)
				if code := status.Code(err); code == codes.PermissionDenied || code == codes.Unauthenticated || code == codes.Internal {
					t.Errorf("operator: %v", err)
				}
			})
		}
	}
}

// TestAuthz_ScopedCallersWorkInTheirAccount: the scoped tokens are not
// just refused everywhere.
func TestAuthz_ScopedCallersWorkInTheirAccount(t *testing.T) {
	t.Parallel()
	e := mustStartAuth(t)
	ctx := ctxT(t)
	d, err := e.decide.CheckFeature(withToken(ctx, e.tokens["decider-a"]), &gatehousev1.CheckFeatureRequest{SessionId: e.sessions["a"], Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLIPBOARD, Url: "https://a.example/"})
	if err != nil || !d.GetDecision().GetAllowed() {
		t.Fatalf("decider a in a: %v %v", d, err)
	}
	if _, err := e.admin.GetLiveGuideSettings(withToken(ctx, e.tokens["admin-a"]), &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "a"}); err != nil {
		t.Fatalf("admin a in a: %v", err)
	}
	// A decider lists its account's sessions, as it gets each of them.
	sl, err := e.testEnv.sessions.ListSessions(withToken(ctx, e.tokens["decider-a"]), &gatehousev1.ListSessionsRequest{AccountId: "a"})
	if err != nil || len(sl.GetSessions()) != 2 {
		t.Fatalf("decider a lists a's sessions: %v %v", sl, err)
	}
	if _, err := e.admin.ListAccounts(withToken(ctx, e.tokens["admin-all"]), &gatehousev1.ListAccountsRequest{}); err != nil {
		t.Fatalf("admin all lists accounts: %v", err)
	}
	// An account's admin sees and handles its own notifications.
	list, err := e.admin.ListNotifications(withToken(ctx, e.tokens["admin-a"]), &gatehousev1.ListNotificationsRequest{AccountId: "a"})
	if err != nil || len(list.GetNotifications()) != 1 || list.GetNotifications()[0].GetId() != e.notifications["a"] {
		t.Fatalf("admin a lists a's notifications: %v %v", list, err)
	}
	if _, err := e.admin.RetryNotification(withToken(ctx, e.tokens["admin-a"]), &gatehousev1.RetryNotificationRequest{Id: e.notifications["a"], To: "fixed@example.com"}); err != nil {
		t.Fatalf("admin a retries a's notification: %v", err)
	}
	// Revocation takes effect with the next call.
	tokens, err := e.admin.ListCallerTokens(withToken(ctx, e.tokens["operator"]), &gatehousev1.ListCallerTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, tok := range tokens.GetTokens() {
		if tok.GetName() == "admin a" {
			id = tok.GetId()
		}
	}
	if _, err := e.admin.RevokeCallerToken(withToken(ctx, e.tokens["operator"]), &gatehousev1.RevokeCallerTokenRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.GetLiveGuideSettings(withToken(ctx, e.tokens["admin-a"]), &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "a"})
	wantCode(t, err, codes.Unauthenticated)
	// Health and reflection need no token.
	if _, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health without a token: %v", err)
	}
}

// TestAuthz_DeletedAccountRevokesItsCallers: deleting an account revokes
// the credentials scoped to it, so that an account created later under the
// same id is not open to the old account's callers.
func TestAuthz_DeletedAccountRevokesItsCallers(t *testing.T) {
	t.Parallel()
	e := mustStartAuth(t)
	op := withToken(ctxT(t), e.tokens["operator"])
	if _, err := e.admin.GetAccount(withToken(ctxT(t), e.tokens["admin-a"]), &gatehousev1.GetAccountRequest{Id: "a"}); err != nil {
		t.Fatalf("admin a before the delete: %v", err)
	}
	if _, err := e.admin.DeleteAccount(op, &gatehousev1.DeleteAccountRequest{Id: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateAccount(op, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "a", DisplayName: "A, new tenant"}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"admin-a", "decider-a"} {
		_, err := e.admin.GetAccount(withToken(ctxT(t), e.tokens[name]), &gatehousev1.GetAccountRequest{Id: "a"})
		wantCode(t, err, codes.Unauthenticated)
	}
	if _, err := e.admin.GetAccount(withToken(ctxT(t), e.tokens["admin-all"]), &gatehousev1.GetAccountRequest{Id: "a"}); err != nil {
		t.Fatalf("a caller scoped to all accounts after the delete: %v", err)
	}

	// The new tenant's admin sees none of the old tenant's history: its
	// audit events and its queued notification stay with the operators.
	tok, err := e.admin.CreateCallerToken(op, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
		Name: "new admin a", Role: gatehousev1.CallerRole_CALLER_ROLE_ADMIN, AccountId: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	newAdmin := withToken(ctxT(t), tok.GetBearer())
	events, err := e.admin.ListAuditEvents(newAdmin, &gatehousev1.ListAuditEventsRequest{AccountId: "a"})
	if err != nil {
		t.Fatal(err)
	}
	var rpcs []string
	for _, ev := range events.GetEvents() {
		rpcs = append(rpcs, ev.GetRpc()[strings.LastIndexByte(ev.GetRpc(), '/')+1:]+" "+ev.GetResourceType())
	}
	if want := []string{"CreateAccount account", "CreateAccount live_guide_settings"}; !slices.Equal(rpcs, want) {
		t.Fatalf("the new tenant's admin sees audit events %q; want only the new account's %q", rpcs, want)
	}
	all, err := e.admin.ListAuditEvents(op, &gatehousev1.ListAuditEventsRequest{AccountId: "a"})
	if err != nil || len(all.GetEvents()) <= len(events.GetEvents()) {
		t.Fatalf("the operator sees %d events of account id a, %v; want the old tenant's too", len(all.GetEvents()), err)
	}
	if list, err := e.admin.ListNotifications(newAdmin, &gatehousev1.ListNotificationsRequest{AccountId: "a"}); err != nil || len(list.GetNotifications()) != 0 {
		t.Fatalf("the new tenant's admin lists notifications %v, %v; want none", list, err)
	}
	_, err = e.admin.RetryNotification(newAdmin, &gatehousev1.RetryNotificationRequest{Id: e.notifications["a"], To: "x@example.com"})
	wantCode(t, err, codes.NotFound)
	if list, err := e.admin.ListNotifications(op, &gatehousev1.ListNotificationsRequest{AccountId: "a"}); err != nil || len(list.GetNotifications()) != 1 {
		t.Fatalf("the operator lists notifications %v, %v; want the old tenant's", list, err)
	}
}
