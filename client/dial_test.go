package client_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// peer is a gRPC server of our own that answers CheckFeature as answer
// says and records what each call carried.
type peer struct {
	gatehousev1.UnimplementedDecisionServiceServer
	gatehousev1.UnimplementedSessionServiceServer
	addr   string
	answer func(n int) error // error of the nth call (from 1), nil for a decision

	mu    sync.Mutex
	calls []peerCall
}

type peerCall struct {
	at         time.Time
	deadline   time.Duration // left when the call arrived; 0 without one
	authorized []string
	userAgent  []string
}

func startPeer(t *testing.T, answer func(n int) error) *peer {
	t.Helper()
	p := &peer{answer: answer}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	gatehousev1.RegisterDecisionServiceServer(s, p)
	gatehousev1.RegisterSessionServiceServer(s, p)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	p.addr = lis.Addr().String()
	return p
}

func (p *peer) CheckFeature(ctx context.Context, _ *gatehousev1.CheckFeatureRequest) (*gatehousev1.CheckFeatureResponse, error) {
	if err := p.record(ctx); err != nil {
		return nil, err
	}
	return &gatehousev1.CheckFeatureResponse{Decision: &gatehousev1.Decision{Allowed: true, Reason: gatehousev1.Reason_REASON_ALLOWED}, Revision: 7}, nil
}

func (p *peer) StartSession(ctx context.Context, _ *gatehousev1.StartSessionRequest) (*gatehousev1.StartSessionResponse, error) {
	if err := p.record(ctx); err != nil {
		return nil, err
	}
	return &gatehousev1.StartSessionResponse{Session: &gatehousev1.Session{Id: "s-1"}}, nil
}

// record notes a call and returns the error answer chooses for it.
func (p *peer) record(ctx context.Context) error {
	c := peerCall{at: time.Now()}
	if dl, ok := ctx.Deadline(); ok {
		c.deadline = time.Until(dl)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	c.authorized, c.userAgent = md.Get("authorization"), md.Get("user-agent")
	p.mu.Lock()
	p.calls = append(p.calls, c)
	n := len(p.calls)
	p.mu.Unlock()
	if p.answer != nil {
		return p.answer(n)
	}
	return nil
}

func (p *peer) seen() []peerCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]peerCall(nil), p.calls...)
}

func shed(delay time.Duration) error {
	st, _ := status.New(codes.ResourceExhausted, "busy").WithDetails(
		&errdetails.ErrorInfo{Reason: "OVERLOADED", Domain: "gatehouse.dev"},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	return st.Err()
}

var check = client.CheckRequest{SessionID: "s", Actor: client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "a"}, Feature: gatehousev1.Feature_FEATURE_CHAT}

// TestRetry_HonoursRetryInfo: a call shed twice with RetryInfo is tried
// again after at least the delay each time and succeeds the third time.
func TestRetry_HonoursRetryInfo(t *testing.T) {
	t.Parallel()
	const delay = 150 * time.Millisecond
	p := startPeer(t, func(n int) error {
		if n <= 2 {
			return shed(delay)
		}
		return nil
	})
	c := dial(t, p.addr)
	d, err := c.Check(context.Background(), check)
	if err != nil || !d.Allowed || d.Revision != 7 {
		t.Fatalf("Check = %+v, %v; want allowed at revision 7", d, err)
	}
	calls := p.seen()
	if len(calls) != 3 {
		t.Fatalf("%d attempts, want 3", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].at.Sub(calls[i-1].at); gap < delay {
			t.Errorf("attempt %d came %v after the previous one, before the server's delay %v", i+1, gap, delay)
		}
	}
}

// TestRetry_Bounded: retries stop after WithMaxAttempts, and at once when
// the delay would pass the deadline; RESOURCE_EXHAUSTED without RetryInfo
// is not retried.
func TestRetry_Bounded(t *testing.T) {
	t.Parallel()
	always := startPeer(t, func(int) error { return shed(10 * time.Millisecond) })
	c := dial(t, always.addr, client.WithMaxAttempts(3))
	_, err := c.Check(context.Background(), check)
	if !errors.Is(err, client.ErrOverloaded) || len(always.seen()) != 3 {
		t.Errorf("always shed: err %v after %d attempts, want ErrOverloaded after 3", err, len(always.seen()))
	}

	long := startPeer(t, func(int) error { return shed(time.Hour) })
	c = dial(t, long.addr, client.WithTimeout(10*time.Second))
	start := time.Now()
	_, err = c.Check(context.Background(), check)
	if !errors.Is(err, client.ErrOverloaded) || len(long.seen()) != 1 || time.Since(start) > 5*time.Second {
		t.Errorf("delay past the deadline: err %v after %d attempts in %v, want ErrOverloaded at once", err, len(long.seen()), time.Since(start))
	}

	noInfo := startPeer(t, func(int) error { return status.Error(codes.ResourceExhausted, "too big") })
	c = dial(t, noInfo.addr)
	_, err = c.Check(context.Background(), check)
	if !errors.Is(err, client.ErrResourceExhausted) || errors.Is(err, client.ErrOverloaded) || len(noInfo.seen()) != 1 {
		t.Errorf("no RetryInfo: err %v after %d attempts, want one attempt", err, len(noInfo.seen()))
	}
}

// TestRetry_Unavailable: a read refused UNAVAILABLE is retried by the
// service config's policy, a write is not.
func TestRetry_Unavailable(t *testing.T) {
	t.Parallel()
	p := startPeer(t, func(n int) error {
		if n == 1 {
			return status.Error(codes.Unavailable, "shutting down")
		}
		return nil
	})
	c := dial(t, p.addr)
	if _, err := c.Check(context.Background(), check); err != nil || len(p.seen()) != 2 {
		t.Fatalf("Check = %v after %d attempts, want success after 2", err, len(p.seen()))
	}

	// A write is not: it may have been committed before the failure.
	w := startPeer(t, func(n int) error {
		if n == 1 {
			return status.Error(codes.Unavailable, "shutting down")
		}
		return nil
	})
	c = dial(t, w.addr)
	_, err := c.StartSession(context.Background(), client.StartRequest{AccountID: "acme"})
	if !errors.Is(err, client.ErrUnavailable) || len(w.seen()) != 1 {
		t.Fatalf("StartSession = %v after %d attempts, want ErrUnavailable after 1", err, len(w.seen()))
	}
	// But a shed write (RetryInfo: nothing was done) is.
	o := startPeer(t, func(n int) error {
		if n == 1 {
			return shed(10 * time.Millisecond)
		}
		return nil
	})
	c = dial(t, o.addr)
	if s, err := c.StartSession(context.Background(), client.StartRequest{AccountID: "acme"}); err != nil || s.GetId() != "s-1" || len(o.seen()) != 2 {
		t.Fatalf("shed StartSession = %v, %v after %d attempts, want s-1 after 2", s, err, len(o.seen()))
	}
}

// TestDial_DefaultDeadline: a call without a deadline gets the default
// one; a caller's own deadline is kept.
func TestDial_DefaultDeadline(t *testing.T) {
	t.Parallel()
	p := startPeer(t, nil)
	c := dial(t, p.addr, client.WithTimeout(300*time.Millisecond))
	if _, err := c.Check(context.Background(), check); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Check(ctx, check); err != nil {
		t.Fatal(err)
	}
	calls := p.seen()
	if d := calls[0].deadline; d <= 0 || d > 300*time.Millisecond {
		t.Errorf("call without a deadline arrived with %v left, want at most the default 300ms", d)
	}
	if d := calls[1].deadline; d <= time.Second {
		t.Errorf("call with a 5s deadline arrived with %v left, want the caller's deadline", d)
	}

	// Against the real server: a check waiting for a revision that never
	// comes ends at the client's deadline, not the server's (10s here).
	g := mustStart(t, false, func(o *server.Options) {
		o.Limits.DecisionTimeout = 10 * time.Second
		o.MaxRevisionWait = 10 * time.Second
	})
	mustFixture(t, g)
	gc := dial(t, g.addr, client.WithTimeout(300*time.Millisecond))
	s, err := gc.StartSession(ctxT(t), client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeID: "alice", CustomerID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	q := chatOf(s.GetId())
	q.MinRevision = 1 << 60
	start := time.Now()
	_, err = gc.Check(context.Background(), q)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Check waiting for a revision: %v after %v, want DeadlineExceeded after about 300ms", err, time.Since(start))
	}
}

// TestDial_UserAgent: every call names the client and its version.
func TestDial_UserAgent(t *testing.T) {
	t.Parallel()
	p := startPeer(t, nil)
	c := dial(t, p.addr)
	if _, err := c.Check(context.Background(), check); err != nil {
		t.Fatal(err)
	}
	ua := strings.Join(p.seen()[0].userAgent, " ")
	if !strings.HasPrefix(ua, "gatehouse-go-client/"+client.Version()) {
		t.Errorf("user agent %q, want gatehouse-go-client/%s first", ua, client.Version())
	}
}

// TestDial_TokenNeedsTLS: a bearer token is never sent in clear to a
// target that is not loopback.
func TestDial_TokenNeedsTLS(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"10.1.2.3:8470", "gatehouse.example.com:8470", "dns:///gatehouse.example.com:8470", "[2001:db8::1]:8470"} {
		if _, err := client.Dial(target, client.WithInsecure(), client.WithBearerToken("gh_k-x_y")); !errors.Is(err, client.ErrInsecureTarget) {
			t.Errorf("Dial(%s, insecure, token) = %v, want ErrInsecureTarget", target, err)
		}
		if _, err := client.Dial(target, client.WithInsecure()); !errors.Is(err, client.ErrInsecureTarget) {
			t.Errorf("Dial(%s, insecure) = %v, want ErrInsecureTarget", target, err)
		}
	}
	for _, target := range []string{"127.0.0.1:8470", "localhost:8470", "[::1]:8470", "dns:///localhost:8470", "unix:///tmp/gatehouse.sock"} {
		c, err := client.Dial(target, client.WithInsecure(), client.WithBearerToken("gh_k-x_y"))
		if err != nil {
			t.Errorf("Dial(%s, insecure, token) = %v, want a client", target, err)
			continue
		}
		_ = c.Close()
	}

	// Forcing plaintext through the escape hatch to a non-loopback name
	// (routed here to a loopback peer) still never sends the token.
	p := startPeer(t, nil)
	c, err := client.Dial("passthrough:///gatehouse.example.com:8470", client.WithBearerToken("gh_k-x_secret"),
		client.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", p.addr)
			})))
	if err == nil { // gRPC refuses it at Dial or at the call
		defer c.Close()
		if _, err := c.Check(context.Background(), check); err == nil {
			t.Error("Check with a token over plaintext to a non-loopback target succeeded")
		}
	}
	for _, call := range p.seen() {
		if len(call.authorized) > 0 {
			t.Errorf("the token crossed a plaintext connection: %v", call.authorized)
		}
	}

	// Over loopback the token is sent.
	c = dial(t, p.addr, client.WithBearerToken("gh_k-x_secret"))
	if _, err := c.Check(context.Background(), check); err != nil {
		t.Fatal(err)
	}
	if calls := p.seen(); len(calls) == 0 || strings.Join(calls[len(calls)-1].authorized, "") != "Bearer gh_k-x_secret" {
		t.Errorf("loopback call carried %v, want the token", calls)
	}
}

// TestDial_KeepaliveWithinServerPolicy: the default client pings no more
// often than the server's default enforcement policy tolerates, so it is
// never sent GOAWAY too_many_pings.
func TestDial_KeepaliveWithinServerPolicy(t *testing.T) {
	if client.DefaultKeepaliveTime < server.DefaultKeepaliveMinTime {
		t.Errorf("client keepalive %v is shorter than the server's minimum %v", client.DefaultKeepaliveTime, server.DefaultKeepaliveMinTime)
	}
}
