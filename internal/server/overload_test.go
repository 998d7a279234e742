package server

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"golang.org/x/net/http2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func withLimits(l Limits) func(*Options) { return func(o *Options) { o.Limits = l } }

func TestLimits_Defaults(t *testing.T) {
	t.Parallel()
	l := Limits{}.withDefaults()
	want := Limits{
		MaxRecvMsgSize: 4 << 20, MaxInflight: 1024, MaxInflightPerCaller: 256, DecisionTimeout: time.Second,
		QueueTarget: 3 * time.Millisecond, QueueInterval: 100 * time.Millisecond, CallerCPUShare: DefaultCallerCPUShare,
		KeepaliveMinTime: 10 * time.Second, MaxConnectionIdle: 15 * time.Minute,
		KeepaliveTime: time.Minute, KeepaliveTimeout: 20 * time.Second,
	}
	if l != want {
		t.Errorf("defaults %+v, want %+v", l, want)
	}
	set := Limits{MaxRecvMsgSize: 1, MaxInflight: 2, MaxInflightPerCaller: -1, DecisionTimeout: 3, KeepaliveMinTime: 4, MaxConnectionIdle: 5, KeepaliveTime: 6, KeepaliveTimeout: 7,
		QueueTarget: 8, QueueInterval: 9, CallerCPUShare: 0.5}
	if got := set.withDefaults(); got != set {
		t.Errorf("withDefaults changed set limits: %+v, want %+v", got, set)
	}
}

// TestLimits_MessageTooBig: a request over the limit is refused by gRPC
// with RESOURCE_EXHAUSTED before any handler runs; one under it reaches
// validation.
func TestLimits_MessageTooBig(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	req := func(n int) *gatehousev1.CheckFeatureRequest {
		return &gatehousev1.CheckFeatureRequest{SessionId: "s-x", Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK,
			Url: "https://example.com/" + strings.Repeat("a", n)}
	}
	_, err := e.decide.CheckFeature(ctx, req(DefaultMaxRecvMsgSize+1))
	st := wantCode(t, err, codes.ResourceExhausted)
	if !strings.Contains(st.Message(), "larger than max") {
		t.Errorf("message %q does not say the message is too large", st.Message())
	}
	// Under the limit the request is decoded and validated.
	_, err = e.decide.CheckFeature(ctx, req(DefaultMaxRecvMsgSize-1024))
	wantInvalid(t, err, "url")

	small := MustStart(t, "", withLimits(Limits{MaxRecvMsgSize: 2048}))
	_, err = small.decide.CheckFeature(ctx, req(4096))
	wantCode(t, err, codes.ResourceExhausted)
	_, err = small.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "big", DisplayName: strings.Repeat("x", 3000)}})
	wantCode(t, err, codes.ResourceExhausted)
	if rev := small.store.Revision(); rev != 0 {
		t.Errorf("a refused oversized write left revision %d", rev)
	}
	_, err = small.decide.CheckFeature(ctx, req(100))
	wantCode(t, err, codes.NotFound)
}

// holdSlot starts a CheckFeature that waits for a revision that never comes
// until ctx ends, and returns once the call holds the server's only slot
// (another call is shed). It returns the held call's error channel.
func holdSlot(t *testing.T, e *testEnv, ctx context.Context, sessionID string) <-chan error {
	t.Helper()
	held := make(chan error, 1)
	go func() {
		for {
			_, err := e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: sessionID, Actor: agent("alice"),
				Feature: gatehousev1.Feature_FEATURE_CHAT, MinRevision: e.store.Revision() + 1_000_000})
			// The probe below may hold the only slot for a moment, and then
			// this call is the one shed: try again.
			if status.Code(err) == codes.ResourceExhausted && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
				continue
			}
			held <- err
			return
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, err := e.admin.ListAccounts(context.Background(), &gatehousev1.ListAccountsRequest{})
		if status.Code(err) == codes.ResourceExhausted {
			return held
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the slow call never held the only slot")
	return nil
}

// TestLimits_ShedsBeyondMaxInflight: with one slot held by a slow call,
// the next call is refused at once with RESOURCE_EXHAUSTED (reason
// OVERLOADED, a retry delay) instead of queueing; health checks still
// answer; once the slot is free, calls succeed again.
func TestLimits_ShedsBeyondMaxInflight(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "", withLimits(Limits{MaxInflight: 1, DecisionTimeout: time.Minute}))
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")

	slow, release := context.WithTimeout(context.Background(), 20*time.Second)
	defer release()
	held := holdSlot(t, e, slow, sess.GetId())

	start := time.Now()
	_, err := e.decide.CheckFeature(ctxT(t), &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	st := wantCode(t, err, codes.ResourceExhausted)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a shed call took %v; it must be refused at once, not queued", took)
	}
	if errorReason(st) != reasonOverloaded {
		t.Errorf("shed call reason %q, want %s", errorReason(st), reasonOverloaded)
	}
	hasRetry := false
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			hasRetry = true
		}
	}
	if !hasRetry {
		t.Errorf("shed call has no RetryInfo: %v", st.Details())
	}
	_, err = e.admin.CreateAccount(ctxT(t), &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "shed", DisplayName: "Shed"}})
	wantCode(t, err, codes.ResourceExhausted)

	hc, err := healthpb.NewHealthClient(e.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health while saturated = %v, %v; want SERVING (health is exempt)", hc, err)
	}

	release()
	if err := <-held; status.Code(err) != codes.DeadlineExceeded && status.Code(err) != codes.Canceled {
		t.Fatalf("held call ended with %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := e.decide.CheckFeature(ctxT(t), &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted || time.Now().After(deadline) {
			t.Fatalf("after the slot was released: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := e.admin.GetAccount(ctxT(t), &gatehousev1.GetAccountRequest{Id: "shed"}); status.Code(err) != codes.NotFound {
		t.Errorf("the shed CreateAccount was applied: GetAccount = %v", err)
	}
}

// TestLimits_StreamsHaveTheirOwnPool: open watches count against a pool of
// their own, so they cannot starve unary calls, and the pool sheds too.
func TestLimits_StreamsHaveTheirOwnPool(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "", withLimits(Limits{MaxInflight: 1}), withStreams(StreamLimits{MaxStreams: 1}))
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	w, err := e.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: sess.GetId(), Actor: agent("alice")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatalf("first watch: %v", err)
	}
	w2, err := e.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: sess.GetId(), Actor: agent("alice")})
	if err == nil {
		_, err = w2.Recv()
	}
	wantCode(t, err, codes.ResourceExhausted)
	for range 3 {
		e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	}
}

// TestLimits_DefaultDecisionDeadline: a decision without a deadline gets
// DecisionTimeout; a caller's own deadline is kept.
func TestLimits_DefaultDecisionDeadline(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	e := MustStart(t, "", withLimits(Limits{DecisionTimeout: timeout}), func(o *Options) { o.MaxRevisionWait = 20 * time.Second })
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	far := e.store.Revision() + 1_000_000
	check := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT, MinRevision: far}

	start := time.Now()
	_, err := e.decide.CheckFeature(context.Background(), check)
	took := time.Since(start)
	wantCode(t, err, codes.DeadlineExceeded)
	if took < timeout || took > timeout+3*time.Second {
		t.Errorf("CheckFeature without a deadline answered after %v, want about %v", took, timeout)
	}

	start = time.Now()
	_, err = e.decide.CheckFeatures(context.Background(), &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{check}})
	wantCode(t, err, codes.DeadlineExceeded)
	if took := time.Since(start); took > timeout+3*time.Second {
		t.Errorf("CheckFeatures without a deadline answered after %v", took)
	}
	_, err = e.decide.GetSessionPolicy(context.Background(), &gatehousev1.GetSessionPolicyRequest{SessionId: sess.GetId(), Actor: agent("alice"), MinRevision: far})
	wantCode(t, err, codes.DeadlineExceeded)

	// A longer deadline set by the caller is not shortened.
	ctx, cancel := context.WithTimeout(context.Background(), 3*timeout)
	defer cancel()
	start = time.Now()
	_, err = e.decide.CheckFeature(ctx, check)
	wantCode(t, err, codes.DeadlineExceeded)
	if took := time.Since(start); took < 2*timeout {
		t.Errorf("a call with its own %v deadline was cut off after %v", 3*timeout, took)
	}
}

// rawConn is a bare HTTP/2 client connection, for what a gRPC client will
// not do (ping too often, ignore pings).
type rawConn struct {
	conn   net.Conn
	fr     *http2.Framer
	goaway chan goAway
	closed chan struct{}
	// ackPings makes the reader answer the server's pings.
	ackPings bool
}

// goAway is a GOAWAY frame received.
type goAway struct {
	code  http2.ErrCode
	debug string
}

func dialRaw(t *testing.T, addr string, ackPings bool) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := &rawConn{conn: conn, fr: http2.NewFramer(conn, conn), goaway: make(chan goAway, 4), closed: make(chan struct{}), ackPings: ackPings}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := r.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	ackFr := http2.NewFramer(conn, nil)
	go func() {
		defer close(r.closed)
		for {
			f, err := r.fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = ackFr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() && r.ackPings {
					_ = ackFr.WritePing(true, f.Data)
				}
			case *http2.GoAwayFrame:
				select {
				case r.goaway <- goAway{f.ErrCode, string(f.DebugData())}:
				default:
				}
			}
		}
	}()
	return r
}

// TestLimits_KeepaliveEnforcement: a client that pings faster than
// KeepaliveMinTime, even without calls, is sent GOAWAY too_many_pings; one
// that respects it is not.
func TestLimits_KeepaliveEnforcement(t *testing.T) {
	t.Parallel()
	const minTime = 250 * time.Millisecond
	e := MustStart(t, "", withLimits(Limits{KeepaliveMinTime: minTime}))
	addr := e.conn.Target()

	polite := dialRaw(t, addr, true)
	for i := range 4 {
		time.Sleep(2 * minTime)
		if err := polite.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	select {
	case g := <-polite.goaway:
		t.Fatalf("a client pinging every %v (without calls) got GOAWAY %v %q", 2*minTime, g.code, g.debug)
	case <-time.After(200 * time.Millisecond):
	}

	rude := dialRaw(t, addr, true)
	var g goAway
	got := false
	for i := 0; !got && i < 50; i++ {
		_ = rude.fr.WritePing(false, [8]byte{byte(i)})
		select {
		case g = <-rude.goaway:
			got = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !got {
		select {
		case g = <-rude.goaway:
		case <-time.After(2 * time.Second):
			t.Fatal("a client pinging every 10ms was not sent GOAWAY")
		}
	}
	if g.code != http2.ErrCodeEnhanceYourCalm || g.debug != "too_many_pings" {
		t.Errorf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", g.code, g.debug)
	}
}

// TestLimits_IdleAndDeadPeers: a connection without calls is closed after
// MaxConnectionIdle, and one that does not answer the server's keepalive
// ping is closed after KeepaliveTimeout.
func TestLimits_IdleAndDeadPeers(t *testing.T) {
	t.Parallel()
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		e := MustStart(t, "", withLimits(Limits{MaxConnectionIdle: 200 * time.Millisecond}))
		r := dialRaw(t, e.conn.Target(), true)
		select {
		case g := <-r.goaway:
			if g.code != http2.ErrCodeNo {
				t.Errorf("idle GOAWAY code %v, want NO_ERROR", g.code)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an idle connection was not closed")
		}
	})
	t.Run("dead peer", func(t *testing.T) {
		t.Parallel()
		e := MustStart(t, "", withLimits(Limits{KeepaliveTime: 200 * time.Millisecond, KeepaliveTimeout: 200 * time.Millisecond}))
		r := dialRaw(t, e.conn.Target(), false)
		select {
		case <-r.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("a connection that never answers pings was not closed")
		}
	})
}
