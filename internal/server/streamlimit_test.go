package server

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

func withStreams(l StreamLimits) func(*Options) { return func(o *Options) { o.Streams = l } }

// openWatch opens a WatchSessionPolicy stream and returns it once its
// first message arrived, or the error that refused it.
func openWatch(ctx context.Context, c gatehousev1.DecisionServiceClient, sess string, actor *gatehousev1.Actor) (gatehousev1.DecisionService_WatchSessionPolicyClient, error) {
	w, err := c.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: sess, Actor: actor})
	if err != nil {
		return nil, err
	}
	if _, err := w.Recv(); err != nil {
		return nil, err
	}
	return w, nil
}

// openHealthWatch opens a health Watch stream and waits for its first
// message.
func openHealthWatch(ctx context.Context, conn grpc.ClientConnInterface) error {
	w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = w.Recv()
	}
	return err
}

// openReflection opens a reflection stream and asks it one question.
func openReflection(ctx context.Context, conn grpc.ClientConnInterface) (reflectionpb.ServerReflection_ServerReflectionInfoClient, error) {
	r, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	// Send may already see the stream ended (io.EOF); Recv has why.
	_ = r.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	_, err = r.Recv()
	return r, err
}

// wantStreamLimit fails unless err is the RESOURCE_EXHAUSTED refusal of
// the given scope.
func wantStreamLimit(t *testing.T, err error, scope string) {
	t.Helper()
	st := wantCode(t, err, codes.ResourceExhausted)
	if errorReason(st) != reasonStreamLimit || errorMeta(st)["scope"] != scope {
		t.Fatalf("refusal %v: reason %q scope %q, want %s/%s", err, errorReason(st), errorMeta(st)["scope"], reasonStreamLimit, scope)
	}
	if !strings.Contains(st.Message(), "limit") {
		t.Fatalf("refusal message %q does not name the limit", st.Message())
	}
}

// TestStreams_MetaStreamsHaveTheirOwnCap: streams anyone can open (health
// Watch, public reflection) are capped by a pool of their own; with that
// pool full, further ones are refused and an authenticated watch still
// opens. The refusal and the open streams show in the metrics.
func TestStreams_MetaStreamsHaveTheirOwnCap(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	const metaCap = 4
	e := mustStartAuth(t, withStreams(StreamLimits{MaxMetaStreams: metaCap, MaxStreams: 2}),
		func(o *Options) { o.Metrics = m; o.Reflection = ReflectionPublic })
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	// No credential on any of these.
	for i := range metaCap {
		var err error
		if i%2 == 0 {
			err = openHealthWatch(ctx, e.conn)
		} else {
			_, err = openReflection(ctx, e.conn)
		}
		if err != nil {
			t.Fatalf("meta stream %d: %v", i, err)
		}
	}
	wantStreamLimit(t, openHealthWatch(ctx, e.conn), "meta")
	_, err := openReflection(ctx, e.conn)
	wantStreamLimit(t, err, "meta")
	// Health checks (unary) are never refused.
	if _, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check with the meta pool full: %v", err)
	}
	// Authenticated streams have their own slots.
	for _, who := range []string{"decider-a", "decider-all"} {
		if _, err := openWatch(withToken(ctx, e.tokens[who]), e.decide, e.sessions["a"], agent("alice")); err != nil {
			t.Fatalf("%s: watch with the meta pool full: %v", who, err)
		}
	}
	if got := metricValue(t, m, "gatehouse_streams_open", "class=meta"); got != metaCap {
		t.Errorf("gatehouse_streams_open{class=meta} = %v, want %d", got, metaCap)
	}
	if got := metricValue(t, m, "gatehouse_streams_open", "class=api"); got != 2 {
		t.Errorf("gatehouse_streams_open{class=api} = %v, want 2", got)
	}
	if got := metricValue(t, m, "gatehouse_streams_refused_total", "class=meta", "scope=meta"); got != 2 {
		t.Errorf("gatehouse_streams_refused_total{class=meta} = %v, want 2", got)
	}
	// The API pool is full now: refused, and counted.
	_, err = openWatch(withToken(ctx, e.tokens["operator"]), e.decide, e.sessions["b"], agent("alice"))
	wantStreamLimit(t, err, "server")
	if got := metricValue(t, m, "gatehouse_streams_refused_total", "class=api", "scope=server"); got != 1 {
		t.Errorf("gatehouse_streams_refused_total{class=api,scope=server} = %v, want 1", got)
	}
	// Closing streams frees their slots.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, m, "gatehouse_streams_open", "class=meta")+metricValue(t, m, "gatehouse_streams_open", "class=api") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("streams still counted open after their callers went")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := openHealthWatch(ctxT(t), e.conn); err != nil {
		t.Fatalf("health watch after the others closed: %v", err)
	}
}

// metricValue returns the value of the gauge or counter name of m whose
// labels include every name=value pair given (0 when none is served).
func metricValue(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for _, kv := range labels {
				k, v, _ := strings.Cut(kv, "=")
				if have[k] != v {
					continue series
				}
			}
			sum += s.GetGauge().GetValue() + s.GetCounter().GetValue()
		}
	}
	return sum
}

// TestStreams_PerCallerShare: an account at its share of the streams (by
// any of its credentials) is refused more, while another account and a
// caller scoped to all accounts still open theirs; a closed stream frees
// the account's slot.
func TestStreams_PerCallerShare(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	const perCaller = 3
	e := mustStartAuth(t, withStreams(StreamLimits{MaxStreams: 3 * perCaller, MaxStreamsPerCaller: perCaller}), func(o *Options) { o.Metrics = m })
	op := withToken(ctxT(t), e.tokens["operator"])
	for name, acct := range map[string]string{"decider-a2": "a", "decider-b": "b"} {
		resp, err := e.admin.CreateCallerToken(op, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
			Name: name, Role: gatehousev1.CallerRole_CALLER_ROLE_DECIDER, AccountId: acct}})
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[name] = resp.GetBearer()
	}
	ctx := ctxT(t)
	aCtx, closeA := context.WithCancel(withToken(ctx, e.tokens["decider-a"]))
	defer closeA()
	var first gatehousev1.DecisionService_WatchSessionPolicyClient
	for i := range perCaller {
		w, err := openWatch(aCtx, e.decide, e.sessions["a"], agent("alice"))
		if err != nil {
			t.Fatalf("account a, watch %d: %v", i, err)
		}
		if i == 0 {
			first = w
		}
	}
	_, err := openWatch(aCtx, e.decide, e.sessions["a"], customer("cust"))
	wantStreamLimit(t, err, "caller")
	if st := wantCode(t, err, codes.ResourceExhausted); !strings.Contains(st.Message(), `account a`) {
		t.Errorf("refusal %q does not name the account", st.Message())
	}
	// Another credential of the same account shares its share.
	_, err = openWatch(withToken(ctx, e.tokens["decider-a2"]), e.decide, e.sessions["a"], agent("alice"))
	wantStreamLimit(t, err, "caller")
	// Account b and an all-accounts caller are not affected.
	for i := range perCaller {
		if _, err := openWatch(withToken(ctx, e.tokens["decider-b"]), e.decide, e.sessions["b"], agent("alice")); err != nil {
			t.Fatalf("account b, watch %d, with a at its share: %v", i, err)
		}
	}
	if _, err := openWatch(withToken(ctx, e.tokens["decider-all"]), e.decide, e.sessions["a"], agent("alice")); err != nil {
		t.Fatalf("all-accounts decider with a at its share: %v", err)
	}
	if got := metricValue(t, m, "gatehouse_streams_refused_total", "class=api", "scope=caller"); got != 2 {
		t.Errorf("gatehouse_streams_refused_total{scope=caller} = %v, want 2", got)
	}
	// Closing one of a's streams gives the slot back.
	if err := first.CloseSend(); err != nil {
		t.Fatal(err)
	}
	closeA()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := openWatch(withToken(ctx, e.tokens["decider-a2"]), e.decide, e.sessions["a"], agent("alice"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("account a still refused after closing its streams: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreams_ReflectionModes: with authentication on, reflection needs a
// credential unless it is public; off, it is not served. Without
// authentication it is open by default.
func TestStreams_ReflectionModes(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	authed := mustStartAuth(t)
	_, err := openReflection(ctx, authed.conn)
	wantCode(t, err, codes.Unauthenticated)
	if _, err := openReflection(withToken(ctx, authed.tokens["decider-a"]), authed.conn); err != nil {
		t.Fatalf("reflection with a decider's credential: %v", err)
	}
	public := mustStartAuth(t, func(o *Options) { o.Reflection = ReflectionPublic })
	if _, err := openReflection(ctx, public.conn); err != nil {
		t.Fatalf("public reflection without a credential: %v", err)
	}
	off := mustStartAuth(t, func(o *Options) { o.Reflection = ReflectionOff })
	_, err = openReflection(withToken(ctx, off.tokens["operator"]), off.conn)
	wantCode(t, err, codes.Unimplemented)
	local := MustStart(t, "")
	if _, err := openReflection(ctx, local.conn); err != nil {
		t.Fatalf("reflection without authentication configured: %v", err)
	}
}

// recvErr waits for the next message or error of a stream and returns the
// error; it fails the test when a message arrives or nothing does.
func recvErr[T any](t *testing.T, what string, recv func() (T, error)) error {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		for {
			_, err := recv()
			if err != nil {
				got <- err
				return
			}
			got <- nil
		}
	}()
	select {
	case err := <-got:
		if err == nil {
			t.Fatalf("%s: a message arrived after the caller lost its credential", what)
		}
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: stream still open 5s after the caller lost its credential", what)
		return nil
	}
}

// TestStreams_RevokedCredentialEndsStreams: revoking the credential a
// stream was opened with ends every stream of it — watches and reflection
// — with UNAUTHENTICATED, and a watch gets no policy of a later snapshot;
// streams of other credentials go on.
func TestStreams_RevokedCredentialEndsStreams(t *testing.T) {
	t.Parallel()
	e := mustStartAuth(t)
	ctx := ctxT(t)
	op := withToken(ctx, e.tokens["operator"])
	list, err := e.admin.ListCallerTokens(op, &gatehousev1.ListCallerTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, tok := range list.GetTokens() {
		ids[tok.GetName()] = tok.GetId()
	}
	for _, who := range []string{"decider a", "decider all"} {
		t.Run(who, func(t *testing.T) {
			bearer := e.tokens[strings.ReplaceAll(who, " ", "-")]
			w, err := openWatch(withToken(ctx, bearer), e.decide, e.sessions["a"], agent("alice"))
			if err != nil {
				t.Fatal(err)
			}
			r, err := openReflection(withToken(ctx, bearer), e.conn)
			if err != nil {
				t.Fatal(err)
			}
			other, err := openWatch(withToken(ctx, e.tokens["operator"]), e.decide, e.sessions["a"], customer("cust"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.admin.RevokeCallerToken(op, &gatehousev1.RevokeCallerTokenRequest{Id: ids[who]}); err != nil {
				t.Fatal(err)
			}
			// A change the watch would otherwise be sent.
			if _, err := e.admin.UpdateLiveGuideSettings(op, &gatehousev1.UpdateLiveGuideSettingsRequest{
				Settings: &gatehousev1.LiveGuideSettings{AccountId: "a", Chat: who == "decider a"}, UpdateMask: mask("chat")}); err != nil {
				t.Fatal(err)
			}
			wantCode(t, recvErr(t, "watch", w.Recv), codes.Unauthenticated)
			wantCode(t, recvErr(t, "reflection", r.Recv), codes.Unauthenticated)
			// The operator's watch saw the change.
			if resp, err := other.Recv(); err != nil || resp.GetPolicy().GetSettings().GetChat() != (who == "decider a") {
				t.Fatalf("operator's watch after another credential was revoked: %v, %v", resp, err)
			}
		})
	}
}

// TestStreams_DeletedAccountEndsItsCallersStreams: deleting an account
// ends the streams of the callers scoped to it with NOT_FOUND, also those
// that do not depend on the account's data (reflection).
func TestStreams_DeletedAccountEndsItsCallersStreams(t *testing.T) {
	t.Parallel()
	e := mustStartAuth(t)
	ctx := ctxT(t)
	w, err := openWatch(withToken(ctx, e.tokens["decider-a"]), e.decide, e.sessions["a"], agent("alice"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := openReflection(withToken(ctx, e.tokens["admin-a"]), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := openReflection(withToken(ctx, e.tokens["admin-all"]), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.DeleteAccount(withToken(ctx, e.tokens["operator"]), &gatehousev1.DeleteAccountRequest{Id: "a"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, recvErr(t, "watch", w.Recv), codes.NotFound)
	wantCode(t, recvErr(t, "reflection", r.Recv), codes.NotFound)
	// An unscoped caller's stream goes on.
	if err := rb.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Recv(); err != nil {
		t.Fatalf("all-accounts admin's reflection after deleting a: %v", err)
	}
}

// TestStreams_EndedSessionEndsWatches: ending a session ends every watch of
// it (OK, after the message showing the end), whoever watches.
func TestStreams_EndedSessionEndsWatches(t *testing.T) {
	t.Parallel()
	e := mustStartAuth(t)
	ctx := ctxT(t)
	var watches []gatehousev1.DecisionService_WatchSessionPolicyClient
	for _, who := range []string{"decider-a", "decider-all", "operator"} {
		for _, actor := range []*gatehousev1.Actor{agent("alice"), customer("cust")} {
			w, err := openWatch(withToken(ctx, e.tokens[who]), e.decide, e.sessions["a"], actor)
			if err != nil {
				t.Fatal(err)
			}
			watches = append(watches, w)
		}
	}
	if _, err := e.testEnv.sessions.EndSession(withToken(ctx, e.tokens["decider-a"]), &gatehousev1.EndSessionRequest{SessionId: e.sessions["a"]}); err != nil {
		t.Fatal(err)
	}
	for i, w := range watches {
		resp, err := w.Recv()
		if err != nil || resp.GetPolicy().GetSession().GetState() != gatehousev1.SessionState_SESSION_STATE_ENDED {
			t.Fatalf("watch %d: %v, %v; want the ended session", i, resp, err)
		}
		if _, err := w.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("watch %d after the end: %v", i, err)
		}
	}
}

// TestStreams_RevokedCertificateEndsStreams: the same for a certificate
// credential: its watch over mutual TLS ends with UNAUTHENTICATED when the
// credential is revoked.
func TestStreams_RevokedCertificateEndsStreams(t *testing.T) {
	t.Parallel()
	ce := startCertEnv(t)
	c := ce.dial(ce.ca.IssueClient(t, "session-server"))
	admin, sessions, op := c.admin, c.sessions, ce.op
	opCtx := withToken(ctxT(t), op)
	if _, err := admin.CreateAccount(opCtx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "a", DisplayName: "A"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateRepresentative(opCtx, &gatehousev1.CreateRepresentativeRequest{AccountId: "a",
		Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}}); err != nil {
		t.Fatal(err)
	}
	cred, err := admin.CreateCallerToken(opCtx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
		Name: "session servers", Role: gatehousev1.CallerRole_CALLER_ROLE_DECIDER, AccountId: "a", CertificateIdentity: "session-server"}})
	if err != nil {
		t.Fatal(err)
	}
	// The certificate alone authenticates these.
	sess, err := sessions.StartSession(ctxT(t), &gatehousev1.StartSessionRequest{AccountId: "a",
		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := openWatch(ctxT(t), c.decide, sess.GetSession().GetId(), agent("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeCallerToken(opCtx, &gatehousev1.RevokeCallerTokenRequest{Id: cred.GetToken().GetId()}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, recvErr(t, "certificate watch", w.Recv), codes.Unauthenticated)
}

// TestStreams_ReflectionShare: an authenticated caller holds at most a
// quarter of the meta pool with reflection streams, so that one tenant
// cannot fill it for health watches and the others.
func TestStreams_ReflectionShare(t *testing.T) {
	t.Parallel()
	e := mustStartAuth(t, withStreams(StreamLimits{MaxMetaStreams: 8}))
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	for i := range 2 {
		if _, err := openReflection(withToken(ctx, e.tokens["decider-a"]), e.conn); err != nil {
			t.Fatalf("reflection %d of account a: %v", i, err)
		}
	}
	_, err := openReflection(withToken(ctx, e.tokens["admin-a"]), e.conn)
	wantStreamLimit(t, err, "caller")
	if _, err := openReflection(withToken(ctx, e.tokens["admin-all"]), e.conn); err != nil {
		t.Fatalf("another caller's reflection: %v", err)
	}
	if err := openHealthWatch(ctx, e.conn); err != nil {
		t.Fatalf("health watch: %v", err)
	}
}

// TestStreams_RevokedCredentialEndsBackup: a backup in progress stops
// with UNAUTHENTICATED when its caller's credential is revoked, before
// the rest of the store is sent.
func TestStreams_RevokedCredentialEndsBackup(t *testing.T) {
	t.Parallel()
	e := mustStartAuth(t)
	e.fillAllowlist("a", 60000)
	op := withToken(ctxT(t), e.tokens["operator"])
	ops2, err := e.admin.CreateCallerToken(op, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
		Name: "backup job", Role: gatehousev1.CallerRole_CALLER_ROLE_OPERATOR}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.admin.BackupStore(withToken(ctxT(t), ops2.GetBearer()), &gatehousev1.BackupStoreRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := b.Recv()
	if err != nil {
		t.Fatal(err)
	}
	size, got := first.GetSize(), int64(len(first.GetChunk()))
	if size < 8*backupChunk {
		t.Fatalf("store of %d bytes is too small to stop a backup in the middle", size)
	}
	if _, err := e.admin.RevokeCallerToken(op, &gatehousev1.RevokeCallerTokenRequest{Id: ops2.GetToken().GetId()}); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := b.Recv()
		if err != nil {
			wantCode(t, err, codes.Unauthenticated)
			break
		}
		got += int64(len(resp.GetChunk()))
	}
	if got >= size {
		t.Fatalf("the whole store (%d bytes) was sent after the credential was revoked", size)
	}
	t.Logf("%d of %d bytes sent before the revocation stopped the backup", got, size)
}

// TestStreams_DefaultMetaCap: with the default limits, health watches
// beyond DefaultMaxMetaStreams are refused, and a watch still opens.
func TestStreams_DefaultMetaCap(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme").GetId()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	for i := range DefaultMaxMetaStreams {
		if err := openHealthWatch(ctx, e.conn); err != nil {
			t.Fatalf("health watch %d: %v", i, err)
		}
	}
	wantStreamLimit(t, openHealthWatch(ctx, e.conn), "meta")
	if _, err := openWatch(ctx, e.decide, sess, agent("alice")); err != nil {
		t.Fatalf("watch with the health watches at their cap: %v", err)
	}
}
