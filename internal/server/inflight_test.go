package server

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// holdCalls starts n calls that block until ctx ends (each retries when it
// is itself shed while the pool fills) and returns once probe is refused
// with the caller's share (scope=caller), and a wait for the held calls.
func holdCalls(t *testing.T, ctx context.Context, n int, call func(context.Context) error, probe func() error) func() {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := call(ctx)
				if status.Code(err) == codes.ResourceExhausted && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				return
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := probe(); status.Code(err) == codes.ResourceExhausted && errorMeta(status.Convert(err))["scope"] == "caller" {
			return wg.Wait
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the %d held calls never filled the caller's share", n)
	return nil
}

// eventually retries call while it is shed (a held call's handler may
// notice its cancellation a moment after its caller), for up to 5 s.
func eventually(call func() error) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := call()
		if status.Code(err) != codes.ResourceExhausted || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantCallerShed checks a call refused for its caller's share: RESOURCE_EXHAUSTED,
// OVERLOADED with scope=caller and the share, a retry delay, a message naming who.
func wantCallerShed(t *testing.T, what string, err error, who string, share string) {
	t.Helper()
	st := status.Convert(err)
	meta := errorMeta(st)
	if st.Code() != codes.ResourceExhausted || errorReason(st) != reasonOverloaded || meta["scope"] != "caller" || meta["shed"] != shedInflightCaller || meta["limit"] != share {
		t.Errorf("%s: %v (metadata %v); want RESOURCE_EXHAUSTED, OVERLOADED, scope=caller, limit=%s", what, err, meta, share)
		return
	}
	if !strings.Contains(st.Message(), who) {
		t.Errorf("%s: message %q does not name %s", what, st.Message(), who)
	}
	retry := false
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			retry = true
		}
	}
	if !retry {
		t.Errorf("%s: no RetryInfo", what)
	}
}

// TestLimits_PerCallerShareOfInflight: with authentication, the calls of
// one account (all its credentials together) hold at most
// MaxInflightPerCaller of the unary pool: the next is refused at once
// while other callers — a credential scoped to all accounts, which has a
// share of its own — are served; once the calls end, the account is served
// again.
func TestLimits_PerCallerShareOfInflight(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	e := mustStartAuth(t, withLimits(Limits{MaxInflight: 16, MaxInflightPerCaller: 2, DecisionTimeout: time.Minute}), func(o *Options) { o.Metrics = m })
	ctx := ctxT(t)
	as := func(who string) context.Context { return withToken(ctx, e.tokens[who]) }
	check := func(who, sess string) error {
		_, err := e.decide.CheckFeature(as(who), &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
		return err
	}
	slowCheck := func(who, sess string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := e.decide.CheckFeature(withToken(ctx, e.tokens[who]), &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"),
				Feature: gatehousev1.Feature_FEATURE_CHAT, MinRevision: e.store.Revision() + 1_000_000})
			return err
		}
	}

	// Account a fills its share.
	slow, release := context.WithTimeout(context.Background(), 30*time.Second)
	defer release()
	wait := holdCalls(t, slow, 2, slowCheck("decider-a", e.sessions["a"]), func() error { return check("decider-a", e.sessions["a"]) })
	wantCallerShed(t, "decider-a", check("decider-a", e.sessions["a"]), `account "a"`, "2")
	_, err := e.admin.GetLiveGuideSettings(as("admin-a"), &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "a"})
	wantCallerShed(t, "admin-a, another credential of account a", err, `account "a"`, "2")
	if err := check("decider-all", e.sessions["b"]); err != nil {
		t.Errorf("a caller scoped to all accounts while account a is at its share: %v", err)
	}
	if err := check("decider-all", e.sessions["a"]); err != nil {
		t.Errorf("a caller scoped to all accounts, in account a: %v (it has a share of its own)", err)
	}
	if got := metricValue(t, m, "gatehouse_shed_total", "reason="+shedInflightCaller); got < 2 {
		t.Errorf("gatehouse_shed_total{reason=%q} = %v; want at least 2", shedInflightCaller, got)
	}
	release()
	wait()
	if err := eventually(func() error { return check("decider-a", e.sessions["a"]) }); err != nil {
		t.Errorf("account a after its calls ended: %v", err)
	}

	// A credential scoped to all accounts fills its own share.
	slow2, release2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer release2()
	wait2 := holdCalls(t, slow2, 2, slowCheck("decider-all", e.sessions["b"]), func() error { return check("decider-all", e.sessions["b"]) })
	wantCallerShed(t, "decider-all", check("decider-all", e.sessions["a"]), "credential", "2")
	if err := check("decider-a", e.sessions["a"]); err != nil {
		t.Errorf("account a while the all-accounts credential is at its share: %v", err)
	}
	release2()
	wait2()
}

// TestLimits_PerCallerShareWithoutAuth: without authentication the share
// is the account's the request names — by account_id, or through the
// session it names (a batch: its first check's). Requests that name no
// account share only the server's pool.
func TestLimits_PerCallerShareWithoutAuth(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "", withLimits(Limits{MaxInflight: 16, MaxInflightPerCaller: 2, DecisionTimeout: time.Minute}))
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")
	acme, other := e.MustStartSession("acme").GetId(), e.MustStartSession("other").GetId()
	chat := func(sess string) *gatehousev1.CheckFeatureRequest {
		return &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}
	}
	check := func(sess string) error { _, err := e.decide.CheckFeature(ctx, chat(sess)); return err }
	slow, release := context.WithTimeout(context.Background(), 30*time.Second)
	defer release()
	wait := holdCalls(t, slow, 2, func(ctx context.Context) error {
		req := chat(acme)
		req.MinRevision = e.store.Revision() + 1_000_000
		_, err := e.decide.CheckFeature(ctx, req)
		return err
	}, func() error { return check(acme) })

	wantCallerShed(t, "CheckFeature in acme", check(acme), `account "acme"`, "2")
	_, err := e.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{chat(acme), chat(other)}})
	wantCallerShed(t, "CheckFeatures starting in acme", err, `account "acme"`, "2")
	_, err = e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "c"})
	wantCallerShed(t, "StartSession in acme", err, `account "acme"`, "2")
	if err := check(other); err != nil {
		t.Errorf("another account while acme is at its share: %v", err)
	}
	if _, err := e.admin.ListAccounts(ctx, &gatehousev1.ListAccountsRequest{}); err != nil {
		t.Errorf("a call naming no account while acme is at its share: %v", err)
	}
	release()
	wait()
	if err := eventually(func() error { return check(acme) }); err != nil {
		t.Errorf("acme after its calls ended: %v", err)
	}
}

// TestLimiter_PerCallerShareAllocatesNothing: taking and giving back a
// caller's share allocates nothing, for an authenticated caller and for a
// request naming its account or session, and no entry outlives the calls.
func TestLimiter_PerCallerShareAllocatesNothing(t *testing.T) {
	lim := &limiter{unary: make(chan struct{}, 8), perCaller: newCallerInflight(2),
		sessionAccount: func(_ context.Context, id string) string { return strings.TrimPrefix(id, "s-") }}
	handler := func(context.Context, any) (any, error) { return struct{}{}, nil }
	scoped := auth.NewContext(context.Background(), auth.Caller{Name: "d", Role: auth.RoleDecider, AccountID: "acme", TokenID: "t1"})
	all := auth.NewContext(context.Background(), auth.Caller{Name: "d", Role: auth.RoleDecider, TokenID: "t2"})
	local := auth.NewContext(context.Background(), auth.Local)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		req  any
		key  inflightKey
	}{
		{"scoped caller", scoped, &gatehousev1.CheckFeatureRequest{SessionId: "s-other"}, inflightKey{keyAccount, "acme"}},
		{"all-accounts caller", all, &gatehousev1.CheckFeatureRequest{SessionId: "s-other"}, inflightKey{keyCredential, "t2"}},
		{"no credential, session", local, &gatehousev1.CheckFeatureRequest{SessionId: "s-acme"}, inflightKey{keyAccount, "acme"}},
		{"no credential, batch", local, &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{{SessionId: "s-acme"}}}, inflightKey{keyAccount, "acme"}},
		{"no credential, account_id", local, &gatehousev1.ListSessionsRequest{AccountId: "acme"}, inflightKey{keyAccount, "acme"}},
	} {
		if k := inflightKeyOf(tc.ctx, tc.req, lim.sessionAccount); k != tc.key {
			t.Errorf("%s: key %v; want %v", tc.name, k, tc.key)
		}
		info := &grpc.UnaryServerInfo{FullMethod: decisionSvc + "CheckFeature"}
		if n := testing.AllocsPerRun(200, func() {
			if _, err := lim.unaryInterceptor(tc.ctx, tc.req, info, handler); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per call; want none", tc.name, n)
		}
		if n := lim.perCaller.running(tc.key); n != 0 {
			t.Errorf("%s: %d calls still counted after they ended", tc.name, n)
		}
	}
	for i := range lim.perCaller.slots {
		if n := lim.perCaller.slots[i].Load(); n != 0 {
			t.Errorf("slot %d counts %d calls after every call ended", i, n)
		}
	}
}

// BenchmarkLimiter is the unary limiter alone, with a handler that answers
// at once: the server's pool only, and with the per-caller share for an
// authenticated caller and for a request whose session names the account.
func BenchmarkLimiter(b *testing.B) {
	handler := func(context.Context, any) (any, error) { return struct{}{}, nil }
	info := &grpc.UnaryServerInfo{FullMethod: decisionSvc + "CheckFeature"}
	req := &gatehousev1.CheckFeatureRequest{SessionId: "s-acme"}
	sessionAccount := func(_ context.Context, id string) string { return strings.TrimPrefix(id, "s-") }
	scoped := auth.NewContext(context.Background(), auth.Caller{Name: "d", Role: auth.RoleDecider, AccountID: "acme", TokenID: "t1"})
	local := auth.NewContext(context.Background(), auth.Local)
	for _, tc := range []struct {
		name      string
		perCaller bool
		ctx       context.Context
	}{{"pool-only", false, scoped}, {"per-caller/credential", true, scoped}, {"per-caller/session", true, local}} {
		b.Run(tc.name, func(b *testing.B) {
			lim := &limiter{unary: make(chan struct{}, 1024), sessionAccount: sessionAccount}
			if tc.perCaller {
				lim.perCaller = newCallerInflight(256)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, _ = lim.unaryInterceptor(tc.ctx, req, info, handler)
				}
			})
		})
	}
}

// TestInflightKeyOf_EveryRequestNamingAnAccount walks every RPC of the
// services: a request whose account_id (its own, or that of the resource it
// carries, such as UpdateLiveGuideSettingsRequest.settings) names an
// account is that account's call without a credential, so that its cost
// counts in the account's shares (callerInflight, callerCPU).
func TestInflightKeyOf_EveryRequestNamingAnAccount(t *testing.T) {
	t.Parallel()
	local := auth.NewContext(context.Background(), auth.Local)
	checked := 0
	for _, svc := range []string{gatehousev1.AdminService_ServiceDesc.ServiceName, gatehousev1.DecisionService_ServiceDesc.ServiceName,
		gatehousev1.SessionService_ServiceDesc.ServiceName} {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
		if err != nil {
			t.Fatal(err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			in := methods.Get(i).Input()
			mt, err := protoregistry.GlobalTypes.FindMessageByName(in.FullName())
			if err != nil {
				t.Fatal(err)
			}
			m := mt.New()
			if !setAccountID(m, "acme") {
				continue
			}
			checked++
			if k := inflightKeyOf(local, m.Interface(), nil); k != (inflightKey{keyAccount, "acme"}) {
				t.Errorf("%s: key %v, want account \"acme\"", in.FullName(), k)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d requests name an account; the walk no longer finds them", checked)
	}
}

// setAccountID sets m's account_id, or that of its first message field that
// has one, to id; false when m has neither.
func setAccountID(m protoreflect.Message, id string) bool {
	fields := m.Descriptor().Fields()
	if fd := fields.ByName("account_id"); fd != nil && fd.Kind() == protoreflect.StringKind {
		m.Set(fd, protoreflect.ValueOfString(id))
		return true
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
			continue
		}
		sub := m.Mutable(fd).Message()
		if af := sub.Descriptor().Fields().ByName("account_id"); af != nil && af.Kind() == protoreflect.StringKind {
			sub.Set(af, protoreflect.ValueOfString(id))
			return true
		}
		m.Clear(fd)
	}
	return false
}
