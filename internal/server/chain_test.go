package server

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// TestCallLog: failed calls are logged at the level of their code; a
// successful call only at DEBUG, or at INFO when it took at least
// SlowCall; a negative SlowCall logs no successful call at INFO.
func TestCallLog(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		level     slog.Level
		slow      time.Duration
		okLevel   string // level of the successful call's line; "" for none
		failLevel string
	}{
		{"info, fast calls", slog.LevelInfo, 0, "", "INFO"},
		{"info, every call slow", slog.LevelInfo, time.Nanosecond, "INFO", "INFO"},
		{"info, slow logging off", slog.LevelInfo, -1, "", "INFO"},
		{"debug", slog.LevelDebug, 0, "DEBUG", "INFO"},
		{"warn", slog.LevelWarn, time.Nanosecond, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &syncBuffer{}
			e := MustStart(t, "", func(o *Options) {
				o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: tt.level}))
				o.SlowCall = tt.slow
			})
			if _, err := e.admin.ListAccounts(ctxT(t), &gatehousev1.ListAccountsRequest{}); err != nil {
				t.Fatal(err)
			}
			_, err := e.admin.GetAccount(ctxT(t), &gatehousev1.GetAccountRequest{Id: "nowhere"})
			wantCode(t, err, codes.NotFound)
			e.stop() // every line is written
			check := func(method, want string) {
				t.Helper()
				lines := finishedCalls(t, logs, method)
				switch {
				case want == "" && len(lines) != 0:
					t.Errorf("%s logged %v, want no line", method, lines)
				case want != "" && (len(lines) != 1 || lines[0]["level"] != want):
					t.Errorf("%s logged %v, want one line at %s", method, lines, want)
				}
			}
			check("ListAccounts", tt.okLevel)
			check("GetAccount", tt.failLevel)
		})
	}
}

// TestCallChain_NoAllocationsWhenNotLogged: a successful call whose log
// line is not written costs the interceptor no allocation, with or without
// a caller's request id and other metadata; a call to a protected method
// two: the caller in its context.
func TestCallChain_NoAllocationsWhenNotLogged(t *testing.T) {
	e := MustStart(t, "", func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&strings.Builder{}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	s := e.srv
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}})
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("user-agent", "grpc-go", "x-b3-traceid", "abc"))
	handler := func(context.Context, any) (any, error) { return struct{}{}, nil }
	for _, tt := range []struct {
		method string
		want   float64
	}{
		{"/grpc.health.v1.Health/Check", 0},
		{decisionSvc + "CheckFeature", 2},
	} {
		info := &grpc.UnaryServerInfo{FullMethod: tt.method}
		if n := testing.AllocsPerRun(200, func() {
			if _, err := s.unaryChain(ctx, nil, info, handler); err != nil {
				t.Fatal(err)
			}
		}); n > tt.want {
			t.Errorf("%s: %v allocations per call, want at most %v", tt.method, n, tt.want)
		}
	}
}

// TestLimiter_NoPerCallContext: the load limiter admits a decision without
// a deadline with no allocation (no timer, no context per call); the
// default decision deadline is given where a decision waits (snapshotAt;
// TestLimits_DefaultDecisionDeadline).
func TestLimiter_NoPerCallContext(t *testing.T) {
	lim := &limiter{unary: make(chan struct{}, 1)}
	handler := func(ctx context.Context, _ any) (any, error) {
		if _, ok := ctx.Deadline(); ok {
			t.Fatal("the limiter gave the call a deadline")
		}
		return struct{}{}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, method := range []string{decisionSvc + "CheckFeature", decisionSvc + "CheckFeatures", adminSvc + "GetAccount"} {
		info := &grpc.UnaryServerInfo{FullMethod: method}
		if n := testing.AllocsPerRun(200, func() {
			if _, err := lim.unaryInterceptor(ctx, nil, info, handler); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per call, want none", method, n)
		}
	}
}

// TestCheckFeatures_ValidBatchFormatsNoFieldNames: a batch of valid
// checks formats no field name (the names of violations are built only
// when there is one; an invalid check's violations still name it, see
// TestCheckFeatures_* in decisions_test.go): what a check adds to a
// batch's allocations is what answering it takes.
func TestCheckFeatures_ValidBatchFormatsNoFieldNames(t *testing.T) {
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	d := &decisionService{s: e.srv}
	check := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/"}
	allocs := func(n int) float64 {
		req := &gatehousev1.CheckFeaturesRequest{}
		for range n {
			req.Checks = append(req.Checks, check)
		}
		return testing.AllocsPerRun(50, func() {
			if _, err := d.CheckFeatures(auth.NewContext(context.Background(), auth.Local), req); err != nil {
				t.Fatal(err)
			}
		})
	}
	perCheck := (allocs(101) - allocs(1)) / 100
	t.Logf("%.2f allocations per check", perCheck)
	if perCheck > 3 {
		t.Errorf("%.2f allocations per valid check in a batch, want at most 3 (the answer)", perCheck)
	}
}
