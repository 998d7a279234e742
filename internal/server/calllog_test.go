package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// callLogLines returns the "finished call" lines of logs by grpc.code.
func callLogLines(t *testing.T, logs *syncBuffer) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e["msg"] == "finished call" {
			code, _ := e["grpc.code"].(string)
			out[code] = append(out[code], e)
		}
	}
	return out
}

// suppressedIn sums the suppressed attributes of lines.
func suppressedIn(lines []map[string]any) int {
	n := 0
	for _, l := range lines {
		if v, ok := l["suppressed"].(float64); ok {
			n += int(v)
		}
	}
	return n
}

// TestCallLog_FloodBoundedPerCode: callers that fail on purpose at any
// rate — bad tokens (unary calls and streams), a decider calling admin
// RPCs, invalid requests — make the daemon write at most its budget of
// lines per code (burst + rate × time), while the few failures of another
// code in the same time are all logged; the lines not written are counted
// per code in gatehouse_call_log_suppressed_total and reported by the
// next line of the code (suppressed), so that lines written plus
// suppressed is every call.
func TestCallLog_FloodBoundedPerCode(t *testing.T) {
	t.Parallel()
	const perSecond = 5
	logs := &syncBuffer{}
	m := NewMetrics()
	began := time.Now()
	e := mustStartAuth(t, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		o.Metrics = m
		o.CallLogRate = perSecond
	})
	// A loaded machine may take long for the floods: a deadline of its own.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	op := withToken(ctx, e.tokens["operator"])
	decider := withToken(ctx, e.tokens["decider-a"])
	bogus := withToken(ctx, "gh_not-a-token")
	check := &gatehousev1.CheckFeatureRequest{SessionId: e.sessions["a"], Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}

	floods := []struct {
		code  codes.Code
		calls int
		ctx   context.Context
		call  func(ctx context.Context, i int) error
	}{
		{codes.Unauthenticated, 2000, bogus, func(ctx context.Context, i int) error {
			if i%4 == 0 { // a stream: refused before its first message
				s, err := e.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: e.sessions["a"]})
				if err != nil {
					return err
				}
				_, err = s.Recv()
				return err
			}
			_, err := e.decide.CheckFeature(ctx, check)
			return err
		}},
		{codes.PermissionDenied, 400, decider, func(ctx context.Context, i int) error {
			_, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: fmt.Sprintf("x%d", i)}})
			return err
		}},
		{codes.InvalidArgument, 400, op, func(ctx context.Context, _ int) error {
			_, err := e.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "Not An Id!"})
			return err
		}},
	}
	var wg sync.WaitGroup
	failures := make(chan error, 16)
	for _, f := range floods {
		const workers = 4
		for w := range workers {
			wg.Go(func() {
				for i := w; i < f.calls; i += workers {
					if err := f.call(f.ctx, i); status.Code(err) != f.code {
						failures <- fmt.Errorf("flood of %v: got %v", f.code, err)
						return
					}
				}
			})
		}
	}
	// Meanwhile, a few failures of another code: none is crowded out.
	const notFound = perSecond - 1
	for range notFound {
		_, err := e.admin.GetAccount(op, &gatehousev1.GetAccountRequest{Id: "nowhere"})
		wantCode(t, err, codes.NotFound)
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	elapsed := time.Since(began)
	if got := len(callLogLines(t, logs)[codes.NotFound.String()]); got != notFound {
		t.Errorf("%d NOT_FOUND lines during the floods, want all %d", got, notFound)
	}
	// The budget's bound over the test so far, with one line of slack for
	// the clock.
	bound := perSecond + int(float64(perSecond)*elapsed.Seconds()) + 1
	written := callLogLines(t, logs)
	for _, f := range floods {
		if got := len(written[f.code.String()]); got > bound {
			t.Errorf("%d calls failing with %v in %v wrote %d lines, want at most %d (%d a second, bursts of %d)",
				f.calls, f.code, elapsed.Round(time.Millisecond), got, bound, perSecond, perSecond)
		}
	}

	// Once the budget has refilled, the next failure of each code is
	// logged; it, and the lines written after suppressed ones during the
	// flood, say how many were suppressed before them: none is unreported.
	time.Sleep(2 * time.Second / perSecond)
	for _, f := range floods {
		id := "after-flood-" + f.code.String()
		if err := f.call(metadata.AppendToOutgoingContext(f.ctx, "x-request-id", id), f.calls); status.Code(err) != f.code {
			t.Fatalf("%v after the flood: got %v", f.code, err)
		}
		lines := callLogLines(t, logs)[f.code.String()]
		if lines[len(lines)-1]["request_id"] != id {
			t.Errorf("the %v call after the flood was not logged", f.code)
		}
		calls := f.calls + 1
		if written, suppressed := len(lines), suppressedIn(lines); written+suppressed != calls {
			t.Errorf("%v: %d lines written + %d reported suppressed = %d, want every call (%d)", f.code, written, suppressed, written+suppressed, calls)
		}
		counted := metricValue(t, m, "gatehouse_call_log_suppressed_total", "code="+f.code.String())
		if want := float64(calls - len(lines)); counted != want {
			t.Errorf("gatehouse_call_log_suppressed_total{code=%q} = %v, want %v", f.code, counted, want)
		}
	}
	if n := metricValue(t, m, "gatehouse_call_log_suppressed_total", "code="+codes.NotFound.String()); n != 0 {
		t.Errorf("NOT_FOUND lines suppressed: %v, want none", n)
	}
}

// TestCallLog_BoundedCodes: every code a caller can cause is bounded, the
// server's own faults (and slow successful calls) are logged every time,
// and --call-log-rate 0 (a negative Options.CallLogRate) bounds nothing.
func TestCallLog_BoundedCodes(t *testing.T) {
	t.Parallel()
	const perSecond, calls = 3, 200
	for _, rate := range []int{perSecond, -1} {
		t.Run(fmt.Sprintf("rate %d", rate), func(t *testing.T) {
			t.Parallel()
			logs := &syncBuffer{}
			began := time.Now()
			e := MustStart(t, "", func(o *Options) {
				o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
				o.CallLogRate = rate
				o.SlowCall = time.Nanosecond // every successful call is slow
			})
			ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}})
			for code := range codes.Code(numCodes) {
				var err error
				if code != codes.OK {
					err = status.Error(code, "refused")
				}
				for range calls {
					e.srv.logCall(ctx, adminSvc+"GetAccount", "unary", time.Now(), "", err)
				}
			}
			bound := perSecond + int(perSecond*time.Since(began).Seconds()) + 1
			written := callLogLines(t, logs)
			for code := range codes.Code(numCodes) {
				got := len(written[code.String()])
				switch limited := code != codes.OK && code != codes.Unknown && code != codes.Internal &&
					code != codes.DataLoss && code != codes.Unimplemented; {
				case rate < 0 || !limited:
					if got != calls {
						t.Errorf("%v: %d of %d lines written, want all", code, got, calls)
					}
				case got > bound:
					t.Errorf("%v: %d of %d lines written, want at most %d", code, got, calls, bound)
				}
			}
		})
	}
}

// TestCallLog_SuppressedLineAllocatesNothing: a line past its code's
// budget, like a line whose level is off, costs logCall no allocation.
func TestCallLog_SuppressedLineAllocatesNothing(t *testing.T) {
	for _, tt := range []struct {
		name  string
		level slog.Level
	}{
		{"suppressed", slog.LevelInfo},
		{"level off", slog.LevelError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := MustStart(t, "", func(o *Options) {
				o.Logger = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: tt.level}))
				o.CallLogRate = 1
			})
			ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}})
			for _, code := range []codes.Code{codes.Unauthenticated, codes.ResourceExhausted, codes.InvalidArgument} {
				err := status.Error(code, "refused")
				e.srv.logCall(ctx, decisionSvc+"CheckFeature", "unary", time.Now(), "", err) // uses the burst
				if n := testing.AllocsPerRun(1000, func() {
					e.srv.logCall(ctx, decisionSvc+"CheckFeature", "unary", time.Now(), "0123456789abcdef", err)
				}); n != 0 {
					t.Errorf("%v: %v allocations per suppressed line, want none", code, n)
				}
			}
		})
	}
}

// TestCallLog_SuppressedMetricServed: the counter of suppressed lines has
// a series for every bounded code from the start (and OK, for the dry-run
// lines), and none for the codes that are logged every time.
func TestCallLog_SuppressedMetricServed(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	MustStart(t, "", func(o *Options) { o.Metrics = m })
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, mf := range mfs {
		if mf.GetName() == "gatehouse_call_log_suppressed_total" {
			for _, s := range mf.GetMetric() {
				labels = append(labels, s.GetLabel()[0].GetValue())
			}
		}
	}
	got := strings.Join(labels, " ")
	const want = "Aborted AlreadyExists Canceled DeadlineExceeded FailedPrecondition InvalidArgument NotFound OK OutOfRange PermissionDenied ResourceExhausted Unauthenticated Unavailable"
	if got != want {
		t.Errorf("series of gatehouse_call_log_suppressed_total: %s, want %s", got, want)
	}
}

// TestCallLog_CauseLinesBounded: the line a store condition adds to a
// failed call (here "write larger than one store transaction", on a store
// whose transactions hold two keys, so that every create fails) has its
// own budget per code beside the call log's: a caller repeating the write
// cannot make either line unbounded, and every line left out is counted
// and reported by the next one.
func TestCallLog_CauseLinesBounded(t *testing.T) {
	t.Parallel()
	const perSecond, calls = 5, 300
	logs := &syncBuffer{}
	m := NewMetrics()
	began := time.Now()
	e := mustStartStore(t, "", bolt.Options{Limits: store.Limits{MaxOps: 2}}, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		o.Metrics = m
		o.CallLogRate = perSecond
	})
	create := func(ctx context.Context, i int) {
		t.Helper()
		_, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: fmt.Sprintf("acct-%d", i), DisplayName: "A"}})
		wantCode(t, err, codes.ResourceExhausted)
	}
	for i := range calls {
		create(ctxT(t), i)
	}
	elapsed := time.Since(began)
	const msg = "write larger than one store transaction"
	causes := func() []map[string]any {
		var out []map[string]any
		for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
			var l map[string]any
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatal(err)
			}
			if l["msg"] == msg {
				out = append(out, l)
			}
		}
		return out
	}
	bound := perSecond + int(perSecond*elapsed.Seconds()) + 1
	if got := len(causes()); got > bound || got == 0 {
		t.Errorf("%d failed writes in %v logged %q %d times, want 1 to %d", calls, elapsed.Round(time.Millisecond), msg, got, bound)
	}
	time.Sleep(2 * time.Second / perSecond)
	create(ctxT(t), calls)
	lines, finished := causes(), callLogLines(t, logs)[codes.ResourceExhausted.String()]
	if n := len(lines) + suppressedIn(lines); n != calls+1 {
		t.Errorf("%q: %d lines + %d reported suppressed, want every call (%d)", msg, len(lines), suppressedIn(lines), calls+1)
	}
	if n := len(finished) + suppressedIn(finished); n != calls+1 {
		t.Errorf("finished call: %d lines + %d reported suppressed, want every call (%d)", len(finished), suppressedIn(finished), calls+1)
	}
	want := float64(2*(calls+1) - len(lines) - len(finished))
	if got := metricValue(t, m, "gatehouse_call_log_suppressed_total", "code=ResourceExhausted"); got != want {
		t.Errorf("gatehouse_call_log_suppressed_total{code=ResourceExhausted} = %v, want %v", got, want)
	}
}

// linesWith returns the lines of logs whose msg contains msg.
func linesWith(t *testing.T, logs *syncBuffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m, _ := l["msg"].(string); strings.Contains(m, msg) {
			out = append(out, l)
		}
	}
	return out
}

// TestCallLog_DryRunLinesBounded: CheckHypothetical, which a decider may
// call, writes its line at INFO for every successful call; a caller
// repeating it gets the same budget as a failure's code (counted under
// OK), and no call goes unreported.
func TestCallLog_DryRunLinesBounded(t *testing.T) {
	t.Parallel()
	const perSecond, calls = 5, 300
	logs := &syncBuffer{}
	m := NewMetrics()
	began := time.Now()
	e := MustStart(t, "", func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		o.Metrics = m
		o.CallLogRate = perSecond
	})
	e.MustCreateAccount("acme")
	dryRun := func() {
		t.Helper()
		if _, err := e.decide.CheckHypothetical(ctxT(t), &gatehousev1.CheckHypotheticalRequest{AccountId: "acme",
			Session: &gatehousev1.HypotheticalSession{Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice"},
			Checks:  []*gatehousev1.HypotheticalCheck{{Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}}}); err != nil {
			t.Fatal(err)
		}
	}
	for range calls {
		dryRun()
	}
	lines := budgetedLines(t, logs, "hypothetical decisions (dry run, no session)", calls, perSecond, began, dryRun)
	if got, want := metricValue(t, m, "gatehouse_call_log_suppressed_total", "code=OK"), float64(calls+1-len(lines)); got != want {
		t.Errorf("gatehouse_call_log_suppressed_total{code=OK} = %v, want %v", got, want)
	}
}

// TestLimitedHandler_TLSHandshakeErrors: net/http writes a line to its
// ErrorLog for every connection whose TLS handshake fails, which anyone
// who can connect causes at any rate; through NewLimitedHandler, as the
// daemon's HTTP server logs, at most the budget is written, the rest is
// counted and reported by the next line.
func TestLimitedHandler_TLSHandshakeErrors(t *testing.T) {
	t.Parallel()
	const perSecond, conns = 5, 200
	logs := &syncBuffer{}
	suppressed := prometheus.NewCounter(prometheus.CounterOpts{Name: "suppressed"})
	began := time.Now()
	h := NewLimitedHandler(slog.NewJSONHandler(logs, nil), perSecond, suppressed)
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = slog.NewLogLogger(slog.New(h).With("component", "http").Handler(), slog.LevelWarn)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	badHandshake := func() {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Plain HTTP to the TLS port: the server answers 400 and logs.
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, c)
	}
	for range conns {
		badHandshake()
	}
	lines := budgetedLines(t, logs, "TLS handshake error", conns, perSecond, began, badHandshake)
	if got, want := testutil.ToFloat64(suppressed), float64(conns+1-len(lines)); got != want {
		t.Errorf("suppressed counter %v, want %v", got, want)
	}
	if lines[0]["component"] != "http" {
		t.Errorf("line lost its attributes: %v", lines[0])
	}
}

// budgetedLines checks the lines with msg in logs after n events since
// began under a budget of perSecond lines a second: at least one and at
// most the budget's were written. It then waits for the budget to refill,
// causes one more event with once, and waits (the server may log after it
// answered) until the lines written and the suppressed ones they report
// account for all n+1; it returns the lines.
func budgetedLines(t *testing.T, logs *syncBuffer, msg string, n, perSecond int, began time.Time, once func()) []map[string]any {
	t.Helper()
	bound := perSecond + int(float64(perSecond)*time.Since(began).Seconds()) + 1
	if got := len(linesWith(t, logs, msg)); got > bound || got == 0 {
		t.Errorf("%d events logged %d lines %q, want 1 to %d", n, got, msg, bound)
	}
	time.Sleep(2 * time.Second / time.Duration(perSecond))
	once()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := linesWith(t, logs, msg)
		if len(lines)+suppressedIn(lines) == n+1 {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines + %d reported suppressed, want every event (%d)", len(lines), suppressedIn(lines), n+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkLogCall measures logCall for a failed call whose line is
// written, suppressed by its code's budget, or below the log level: the
// two last cost no formatting and no allocation.
func BenchmarkLogCall(b *testing.B) {
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}})
	err := status.Error(codes.Unauthenticated, "the bearer token is not a Gatehouse token")
	for _, bc := range []struct {
		name  string
		level slog.Level
		rate  int
	}{
		{"written", slog.LevelInfo, -1},
		{"suppressed", slog.LevelInfo, 1},
		{"level_off", slog.LevelWarn, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := MustStart(b, "", func(o *Options) {
				o.Logger = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: bc.level}))
				o.CallLogRate = bc.rate
			})
			e.srv.logCall(ctx, decisionSvc+"CheckFeature", "unary", time.Now(), "", err) // uses the burst
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.srv.logCall(ctx, decisionSvc+"CheckFeature", "unary", time.Now(), "0123456789abcdef", err)
			}
		})
	}
}
