//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// Bounds of the end-to-end tests. They are generous for a loaded machine;
// a healthy daemon needs a fraction of each.
const (
	startTimeout = 20 * time.Second // until the "serving" log line
	exitTimeout  = 15 * time.Second // until the process exits after a signal
	testTimeout  = 30 * time.Second // for all calls of one test
)

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeSharedBrowser()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds the daemon once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the daemon; skipped with -short")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "gatehoused-e2e-")
		if buildErr != nil {
			return
		}
		bin := filepath.Join(buildDir, "gatehoused")
		cmd := exec.Command("go", "build", "-buildvcs=false", "-o", bin, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		binPath = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// environ returns the test's environment without any GATEHOUSE_ or
// OpenTelemetry (OTEL_) variable, with HTTP off (GATEHOUSE_HTTP_ADDR
// empty: its default is a fixed port; a test that serves HTTP passes
// --http-addr 127.0.0.1:0), plus extra (KEY=VALUE).
func environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") && !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	env = append(env, "GATEHOUSE_HTTP_ADDR=")
	return append(env, extra...)
}

// loopbackArgs are the arguments of a daemon on a free loopback port with
// its store in dir.
func loopbackArgs(dir string, extra ...string) []string {
	return append([]string{"--listen", "127.0.0.1:0", "--data-dir", dir}, extra...)
}

// daemon is one gatehoused process.
type daemon struct {
	t    *testing.T
	args []string
	cmd  *exec.Cmd

	serving chan map[string]any // receives the "serving" log entry
	exited  chan struct{}       // closed once stderr is drained and the process reaped

	mu    sync.Mutex
	lines []string

	addr string // from the "serving" log line
}

// launch starts the daemon without waiting for it to serve. The process is
// killed at the end of the test if still running; its stderr is logged
// when the test failed.
func launch(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{
		t:       t,
		args:    args,
		cmd:     exec.Command(binary(t), args...),
		serving: make(chan map[string]any, 1),
		exited:  make(chan struct{}),
	}
	d.cmd.Env = environ(env...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(d.exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.lines = append(d.lines, line)
			d.mu.Unlock()
			if e, ok := parseLog(line); ok && !sent && e["msg"] == "serving" {
				d.serving <- e
				sent = true
			}
		}
		// Wait only after stderr is drained, as exec requires.
		_ = d.cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("stderr of gatehoused %s:\n%s", strings.Join(d.args, " "), d.stderrHead(maxLoggedLines))
		}
	})
	return d
}

// awaitServing waits for the "serving" log line and reports true, or
// reports false when the process exits first. It fails the test when
// neither happens in time.
func (d *daemon) awaitServing() bool {
	d.t.Helper()
	select {
	case e := <-d.serving:
		addr, _ := e["listen"].(string)
		if addr == "" {
			d.t.Fatalf("serving log line without a listen address: %v", e)
		}
		d.addr = addr
		return true
	case <-d.exited:
		return false
	case <-time.After(startTimeout):
		d.t.Fatalf("gatehoused did not log \"serving\" within %v", startTimeout)
		return false
	}
}

// start launches the daemon and waits until it serves.
func start(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	d := launch(t, env, args...)
	if !d.awaitServing() {
		t.Fatalf("gatehoused %s exited with %v before serving", strings.Join(args, " "), d.cmd.ProcessState)
	}
	return d
}

// awaitExit waits for the process to exit and returns its exit code.
func (d *daemon) awaitExit(within time.Duration) int {
	d.t.Helper()
	select {
	case <-d.exited:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		d.t.Fatalf("gatehoused did not exit within %v", within)
		return -1
	}
}

// terminate sends SIGTERM and returns the exit code.
func (d *daemon) terminate() int {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatalf("SIGTERM: %v", err)
	}
	return d.awaitExit(exitTimeout)
}

// stop sends SIGTERM and fails the test unless the daemon exits 0.
func (d *daemon) stop() {
	d.t.Helper()
	if code := d.terminate(); code != 0 {
		d.t.Fatalf("gatehoused exited %d after SIGTERM, want 0", code)
	}
}

// maxLoggedLines bounds the stderr logged for a failed test; a crash
// trace is long.
const maxLoggedLines = 40

// stderrHead returns the first n lines of stderr, saying how many follow.
func (d *daemon) stderrHead(n int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.lines) <= n {
		return strings.Join(d.lines, "\n")
	}
	return strings.Join(d.lines[:n], "\n") + fmt.Sprintf("\n... (%d more lines)", len(d.lines)-n)
}

func (d *daemon) stderr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.lines, "\n")
}

// logs returns the JSON log entries written so far, in order.
func (d *daemon) logs() []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []map[string]any
	for _, l := range d.lines {
		if e, ok := parseLog(l); ok {
			out = append(out, e)
		}
	}
	return out
}

// logIndex returns the index in logs() of the first entry with msg for
// which match (if not nil) holds, or -1.
func (d *daemon) logIndex(msg string, match func(map[string]any) bool) (int, map[string]any) {
	for i, e := range d.logs() {
		if e["msg"] == msg && (match == nil || match(e)) {
			return i, e
		}
	}
	return -1, nil
}

// mustLog returns the first entry with msg, failing the test without one.
func (d *daemon) mustLog(msg string) map[string]any {
	d.t.Helper()
	i, e := d.logIndex(msg, nil)
	if i < 0 {
		d.t.Fatalf("no log entry with msg %q", msg)
	}
	return e
}

// awaitLog returns the first entry with msg once the daemon has logged
// it, failing the test when it has not within 10 s.
func (d *daemon) awaitLog(msg string) map[string]any {
	d.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if i, e := d.logIndex(msg, nil); i >= 0 {
			return e
		}
	}
	d.t.Fatalf("no log entry with msg %q within 10s", msg)
	return nil
}

func parseLog(line string) (map[string]any, bool) {
	if !strings.HasPrefix(line, "{") {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var e map[string]any
	if err := dec.Decode(&e); err != nil {
		return nil, false
	}
	return e, true
}

// logUint reads a numeric attribute of a log entry.
func logUint(t *testing.T, e map[string]any, key string) uint64 {
	t.Helper()
	n, ok := e[key].(json.Number)
	if !ok {
		t.Fatalf("log entry %v: %q is %T, want a number", e, key, e[key])
	}
	v, err := strconv.ParseUint(n.String(), 10, 64)
	if err != nil {
		t.Fatalf("log entry %v: %q: %v", e, key, err)
	}
	return v
}

// clients are the API clients of one connection.
type clients struct {
	conn     *grpc.ClientConn
	admin    gatehousev1.AdminServiceClient
	sessions gatehousev1.SessionServiceClient
	decide   gatehousev1.DecisionServiceClient
	health   healthpb.HealthClient
}

func dial(t *testing.T, addr string) *clients {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &clients{
		conn:     conn,
		admin:    gatehousev1.NewAdminServiceClient(conn),
		sessions: gatehousev1.NewSessionServiceClient(conn),
		decide:   gatehousev1.NewDecisionServiceClient(conn),
		health:   healthpb.NewHealthClient(conn),
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

func agent(id string) *gatehousev1.Actor {
	return &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: id}
}

func customer(id string) *gatehousev1.Actor {
	return &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_CUSTOMER, Id: id}
}

func click(sessionID string, actor *gatehousev1.Actor) *gatehousev1.CheckFeatureRequest {
	return &gatehousev1.CheckFeatureRequest{
		SessionId: sessionID,
		Actor:     actor,
		Feature:   gatehousev1.Feature_FEATURE_CLICK,
		Url:       "https://www.example.com/",
	}
}

// checkDecision calls CheckFeature and compares the decision.
func checkDecision(ctx context.Context, t *testing.T, c *clients, req *gatehousev1.CheckFeatureRequest, allowed bool, reason gatehousev1.Reason, rule string) *gatehousev1.CheckFeatureResponse {
	t.Helper()
	resp, err := c.decide.CheckFeature(ctx, req)
	if err != nil {
		t.Fatalf("CheckFeature(%v): %v", req, err)
	}
	d := resp.GetDecision()
	if d.GetAllowed() != allowed || d.GetReason() != reason || d.GetRule() != rule {
		t.Fatalf("CheckFeature(%v) = allowed=%v reason=%v rule=%q, want allowed=%v reason=%v rule=%q",
			req, d.GetAllowed(), d.GetReason(), d.GetRule(), allowed, reason, rule)
	}
	return resp
}

// wantCode fails the test unless err is a status with code.
func wantCode(t *testing.T, what string, err error, code codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if err == nil || !ok || st.Code() != code {
		t.Fatalf("%s: got %v, want code %v", what, err, code)
	}
	return st
}

// errorInfo returns the ErrorInfo detail of st.
func errorInfo(t *testing.T, st *status.Status) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei
		}
	}
	t.Fatalf("status %v has no ErrorInfo detail (details %v)", st, st.Details())
	return nil
}

// violationFields returns the fields of st's BadRequest detail.
func violationFields(t *testing.T, st *status.Status) []string {
	t.Helper()
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			var fields []string
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
			return fields
		}
	}
	t.Fatalf("status %v has no BadRequest detail (details %v)", st, st.Details())
	return nil
}

func TestE2E_LiveGuideSliceSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)

	d := start(t, nil, loopbackArgs(dir)...)
	c := dial(t, d.addr)

	acct, err := c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{
		Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"},
	})
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if acct.GetAccount().GetId() != "acme" || acct.GetAccount().GetRevision() == 0 {
		t.Fatalf("CreateAccount = %v, want id acme with a revision", acct.GetAccount())
	}
	rep, err := c.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{
		AccountId:      "acme",
		Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true},
	})
	if err != nil {
		t.Fatalf("CreateRepresentative: %v", err)
	}
	if !rep.GetRepresentative().GetLiveGuideEnabled() {
		t.Fatalf("CreateRepresentative = %v, want live_guide_enabled", rep.GetRepresentative())
	}
	upd, err := c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings:   &gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true},
		UpdateMask: mask("agent_click_restricted"),
	})
	if err != nil {
		t.Fatalf("UpdateLiveGuideSettings: %v", err)
	}
	settings := upd.GetSettings()
	// The mask names one field: the defaults of the others stay.
	if !settings.GetAgentClickRestricted() || !settings.GetClipboardAgent() || !settings.GetShowDisclaimer() {
		t.Fatalf("UpdateLiveGuideSettings = %v, want agent_click_restricted with the other defaults kept", settings)
	}
	started, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{
		AccountId:        "acme",
		Kind:             gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE,
		RepresentativeId: "alice",
		CustomerId:       "cust-1",
	})
	if err != nil {
		t.Fatalf("StartSession: %v", err)
	}
	sess := started.GetSession()
	if sess.GetId() == "" || sess.GetState() != gatehousev1.SessionState_SESSION_STATE_ACTIVE {
		t.Fatalf("StartSession = %v, want an active session with an id", sess)
	}

	denied := checkDecision(ctx, t, c, click(sess.GetId(), agent("alice")),
		false, gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, "agent_click_restricted")
	if denied.GetRevision() < settings.GetRevision() {
		t.Errorf("CheckFeature answered at revision %d, before the settings write at %d", denied.GetRevision(), settings.GetRevision())
	}
	checkDecision(ctx, t, c, click(sess.GetId(), customer("cust-1")), true, gatehousev1.Reason_REASON_ALLOWED, "")
	checkDecision(ctx, t, c, click(sess.GetId(), agent("mallory")), false, gatehousev1.Reason_REASON_ACTOR_NOT_IN_SESSION, "")

	d.stop()
	closedRev := logUint(t, d.mustLog("store closed"), "revision")
	if closedRev < denied.GetRevision() {
		t.Errorf("store closed at revision %d, before the revision %d already answered", closedRev, denied.GetRevision())
	}

	d2 := start(t, nil, loopbackArgs(dir)...)
	serving := d2.mustLog("serving")
	if got := logUint(t, serving, "revision"); got != closedRev {
		t.Errorf("restarted daemon serves revision %d, want %d as closed", got, closedRev)
	}
	if got := logUint(t, serving, "accounts"); got != 1 {
		t.Errorf("restarted daemon serves %d accounts, want 1", got)
	}
	c2 := dial(t, d2.addr)

	got, err := c2.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: sess.GetId()})
	if err != nil {
		t.Fatalf("GetSession after restart: %v", err)
	}
	if !proto.Equal(got.GetSession(), sess) {
		t.Errorf("GetSession after restart = %v, want %v", got.GetSession(), sess)
	}
	gs, err := c2.admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "acme"})
	if err != nil {
		t.Fatalf("GetLiveGuideSettings after restart: %v", err)
	}
	if !proto.Equal(gs.GetSettings(), settings) {
		t.Errorf("GetLiveGuideSettings after restart = %v, want %v", gs.GetSettings(), settings)
	}
	again := checkDecision(ctx, t, c2, click(sess.GetId(), agent("alice")),
		false, gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, "agent_click_restricted")
	if again.GetRevision() < denied.GetRevision() {
		t.Errorf("CheckFeature after restart answered at revision %d, before %d", again.GetRevision(), denied.GetRevision())
	}
	checkDecision(ctx, t, c2, click(sess.GetId(), customer("cust-1")), true, gatehousev1.Reason_REASON_ALLOWED, "")

	ended, err := c2.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: sess.GetId(), CustomerRating: 5})
	if err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	if ended.GetSession().GetState() != gatehousev1.SessionState_SESSION_STATE_ENDED || ended.GetSession().GetEndTime() == nil {
		t.Errorf("EndSession = %v, want ENDED with an end time", ended.GetSession())
	}
	checkDecision(ctx, t, c2, click(sess.GetId(), agent("alice")), false, gatehousev1.Reason_REASON_SESSION_ENDED, "")
	checkDecision(ctx, t, c2, click(sess.GetId(), customer("cust-1")), false, gatehousev1.Reason_REASON_SESSION_ENDED, "")

	_, err = c2.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: sess.GetId()})
	st := wantCode(t, "EndSession of an ended session", err, codes.FailedPrecondition)
	if r := errorInfo(t, st).GetReason(); r != "SESSION_ENDED" {
		t.Errorf("EndSession of an ended session: ErrorInfo reason %q, want SESSION_ENDED", r)
	}
	d2.stop()
}

func TestE2E_GracefulShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)
	const shutdownTimeout = 10 * time.Second
	d := start(t, nil, loopbackArgs(dir, "--shutdown-timeout", shutdownTimeout.String())...)
	c := dial(t, d.addr)
	if _, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check: %v", err)
	}

	// A check waiting for a revision the store never reaches stays in
	// flight until its deadline: the server answers DEADLINE_EXCEEDED
	// itself, unless shutdown cancels the call first.
	const callDeadline = 3 * time.Second
	callErr := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, callDeadline)
		defer cancel()
		req := click("s-nowhere", agent("alice"))
		req.MinRevision = 1 << 40
		_, err := c.decide.CheckFeature(cctx, req)
		callErr <- err
	}()
	time.Sleep(300 * time.Millisecond)

	sent := time.Now()
	if code := d.terminate(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	if took := time.Since(sent); took > shutdownTimeout {
		t.Errorf("exit took %v after SIGTERM, more than the shutdown timeout %v", took, shutdownTimeout)
	}
	select {
	case err := <-callErr:
		wantCode(t, "in-flight CheckFeature", err, codes.DeadlineExceeded)
	case <-time.After(exitTimeout):
		t.Fatal("in-flight CheckFeature did not return")
	}

	shutting, _ := d.logIndex("shutting down; letting in-flight calls finish", nil)
	finished, _ := d.logIndex("finished call", func(e map[string]any) bool { return e["grpc.method"] == "CheckFeature" })
	closed, _ := d.logIndex("store closed", nil)
	if shutting < 0 || finished < 0 || closed < 0 {
		t.Fatalf("log entries: shutting down at %d, CheckFeature finished at %d, store closed at %d; want all", shutting, finished, closed)
	}
	if !(shutting < finished && finished < closed) {
		t.Errorf("log order: shutting down at %d, CheckFeature finished at %d, store closed at %d; want the call to finish during shutdown, before the store closes",
			shutting, finished, closed)
	}
	// It ran to its own deadline (the server may see the client's cancel
	// at that moment rather than its own timer), not cut off at SIGTERM.
	_, e := d.logIndex("finished call", func(e map[string]any) bool { return e["grpc.method"] == "CheckFeature" })
	if code := e["grpc.code"]; code != "DeadlineExceeded" && code != "Canceled" {
		t.Errorf("in-flight CheckFeature finished with %v, want DeadlineExceeded", code)
	}
	ms, _ := e["grpc.time_ms"].(string)
	if ran, err := strconv.ParseFloat(ms, 64); err != nil || time.Duration(ran*float64(time.Millisecond)) < callDeadline*2/3 {
		t.Errorf("in-flight CheckFeature ran %q ms, want about its deadline %v", ms, callDeadline)
	}

	// The file lock is released: a new daemon opens the same store at
	// once (a held lock makes it exit, "locked by another process").
	d2 := start(t, nil, loopbackArgs(dir)...)
	c2 := dial(t, d2.addr)
	resp, err := c2.health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check after restart = %v, %v; want SERVING", resp, err)
	}
	d2.stop()
}

func TestE2E_ShutdownTimeoutCutsOffLongCalls(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)
	const shutdownTimeout = 500 * time.Millisecond
	d := start(t, nil, loopbackArgs(dir, "--shutdown-timeout", shutdownTimeout.String())...)
	c := dial(t, d.addr)
	if _, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check: %v", err)
	}
	callErr := make(chan error, 1)
	go func() {
		req := click("s-nowhere", agent("alice"))
		req.MinRevision = 1 << 40
		_, err := c.decide.CheckFeature(ctx, req) // deadline: testTimeout
		callErr <- err
	}()
	time.Sleep(300 * time.Millisecond)

	sent := time.Now()
	if code := d.terminate(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	if took := time.Since(sent); took < shutdownTimeout {
		t.Errorf("exit took %v after SIGTERM, less than the shutdown timeout %v although a call was in flight", took, shutdownTimeout)
	}
	select {
	case err := <-callErr:
		if status.Code(err) == codes.OK {
			t.Errorf("long CheckFeature = %v, want it cut off", err)
		}
	case <-time.After(exitTimeout):
		t.Fatal("long CheckFeature was not cut off by the shutdown")
	}
	d.mustLog("store closed")
}

func TestE2E_HealthWatchSeesNotServingOnShutdown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)
	d := start(t, nil, loopbackArgs(dir, "--shutdown-timeout", "1s")...)
	c := dial(t, d.addr)
	w, err := c.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: "gatehouse.v1.DecisionService"})
	if err != nil {
		t.Fatalf("health Watch: %v", err)
	}
	first, err := w.Recv()
	if err != nil || first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first health update = %v, %v; want SERVING", first, err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next, err := w.Recv()
	if err != nil || next.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health update after SIGTERM = %v, %v; want NOT_SERVING", next, err)
	}
	if code := d.awaitExit(exitTimeout); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
}

func TestE2E_RefusesNonLoopbackWithoutInsecure(t *testing.T) {
	t.Parallel()
	refusals := []struct {
		name string
		env  []string
		args func(dir string) []string
	}{
		{"flag v4", nil, func(dir string) []string { return []string{"--listen", "0.0.0.0:0", "--data-dir", dir} }},
		{"flag v6", nil, func(dir string) []string { return []string{"--listen", "[::]:0", "--data-dir", dir} }},
		{"flag empty host", nil, func(dir string) []string { return []string{"--listen", ":0", "--data-dir", dir} }},
		{"environment", []string{"GATEHOUSE_LISTEN=0.0.0.0:0"}, func(dir string) []string { return []string{"--data-dir", dir} }},
		{"environment data dir too", []string{"GATEHOUSE_LISTEN=0.0.0.0:0"}, func(dir string) []string { return nil }},
		{"flag overrides insecure environment", []string{"GATEHOUSE_INSECURE=true"}, func(dir string) []string {
			return []string{"--listen", "0.0.0.0:0", "--insecure=false", "--data-dir", dir}
		}},
	}
	for _, tt := range refusals {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			env := tt.env
			if tt.name == "environment data dir too" {
				env = append(slices.Clone(env), "GATEHOUSE_DATA_DIR="+dir)
			}
			d := launch(t, env, tt.args(dir)...)
			if d.awaitServing() {
				t.Fatalf("serving on %s without --insecure", d.addr)
			}
			if code := d.cmd.ProcessState.ExitCode(); code == 0 {
				t.Errorf("exit code 0, want non-zero")
			}
			if out := d.stderr(); !strings.Contains(out, "--insecure") {
				t.Errorf("stderr %q does not mention --insecure", out)
			}
			// Refused before the store is touched.
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("data dir %s: %v, want it not created", dir, err)
			}
		})
	}

	accepted := []struct {
		name string
		env  []string
		args []string
	}{
		{"insecure flag", nil, []string{"--listen", "0.0.0.0:0", "--insecure"}},
		{"insecure environment", []string{"GATEHOUSE_INSECURE=true"}, []string{"--listen", "0.0.0.0:0"}},
		{"both from environment", []string{"GATEHOUSE_LISTEN=0.0.0.0:0", "GATEHOUSE_INSECURE=1"}, nil},
	}
	for _, tt := range accepted {
		t.Run("insecure/"+tt.name, func(t *testing.T) {
			t.Parallel()
			args := append(slices.Clone(tt.args), "--data-dir", t.TempDir())
			d := start(t, tt.env, args...)
			if !strings.HasPrefix(d.addr, "0.0.0.0:") && !strings.HasPrefix(d.addr, "[::]:") {
				t.Errorf("serving on %s, want all interfaces", d.addr)
			}
			i, e := d.logIndex("serving without authentication (--insecure)", nil)
			if i < 0 {
				t.Errorf("no warning about serving without authentication")
			} else if e["level"] != "WARN" {
				t.Errorf("insecure warning at level %v, want WARN", e["level"])
			}
			d.stop()
		})
	}

	t.Run("loopback flag wins over environment", func(t *testing.T) {
		t.Parallel()
		d := start(t, []string{"GATEHOUSE_LISTEN=0.0.0.0:0"}, loopbackArgs(t.TempDir())...)
		if !strings.HasPrefix(d.addr, "127.0.0.1:") {
			t.Errorf("serving on %s, want 127.0.0.1", d.addr)
		}
		if i, _ := d.logIndex("serving without authentication (--insecure)", nil); i >= 0 {
			t.Errorf("insecure warning on a loopback address")
		}
		d.stop()
	})
}

func TestE2E_RefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"bad environment value", []string{"GATEHOUSE_SHUTDOWN_TIMEOUT=soon"}, nil, "GATEHOUSE_SHUTDOWN_TIMEOUT"},
		{"bad log level", nil, []string{"--log-level", "loud"}, "log-level"},
		{"bad log format", nil, []string{"--log-format", "yaml"}, "log-format"},
		{"zero shutdown timeout", nil, []string{"--shutdown-timeout", "0s"}, "shutdown-timeout"},
		{"unknown flag", nil, []string{"--no-such-flag"}, "no-such-flag"},
		{"otel endpoint without port", nil, []string{"--otel-endpoint", "otel-collector"}, "otel-endpoint"},
		{"sample ratio above one", []string{"GATEHOUSE_OTEL_SAMPLE_RATIO=2"}, nil, "otel-sample-ratio"},
		{"bad OTEL_RESOURCE_ATTRIBUTES with tracing", []string{"OTEL_RESOURCE_ATTRIBUTES=no-equals-sign"}, []string{"--otel-endpoint", "127.0.0.1:4317"}, "tracing"},
		{"unreadable smtp password file", nil, []string{"--smtp-addr", "127.0.0.1:2525", "--smtp-username", "gh", "--smtp-password-file", "/nonexistent/smtp.pw"}, "smtp-password-file"},
		{"smtp username without password file", nil, []string{"--smtp-addr", "127.0.0.1:2525", "--smtp-username", "gh"}, "smtp-username and smtp-password-file"},
		{"pprof without metrics", nil, []string{"--pprof"}, "pprof"},
		{"pprof on a non-loopback metrics address", []string{"GATEHOUSE_PPROF=true"}, []string{"--metrics-addr", "0.0.0.0:0"}, "pprof"},
		{"negative slow call", nil, []string{"--log-slow-call", "-1s"}, "log-slow-call"},
		{"HTTP on a non-loopback address without authentication", []string{"GATEHOUSE_HTTP_ADDR=0.0.0.0:0"}, nil, "http-addr"},
		{"HTTP body limit zero", nil, []string{"--http-addr", "127.0.0.1:0", "--http-max-body-bytes", "0"}, "http-max-body-bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			d := launch(t, tt.env, append(loopbackArgs(dir), tt.args...)...)
			if d.awaitServing() {
				t.Fatalf("serving on %s despite a bad configuration", d.addr)
			}
			if code := d.cmd.ProcessState.ExitCode(); code == 0 {
				t.Errorf("exit code 0, want non-zero")
			}
			if out := d.stderr(); !strings.Contains(out, tt.want) {
				t.Errorf("stderr %q does not mention %q", out, tt.want)
			}
		})
	}
}

func TestE2E_RefusesCorruptStore(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"short text", []byte("this is not a bbolt database\n")},
		{"one page of garbage", bytes.Repeat([]byte("garbage!"), 512)},
		{"pages of 0xff", bytes.Repeat([]byte{0xff}, 16<<10)},
		{"random pages", random},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "gatehouse.db")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			wantCorruptRefusal(t, dir, tt.data)
		})
	}
}

// wantCorruptRefusal starts the daemon on dir, whose store file holds data,
// and checks that it refuses with a clear error and leaves the file alone.
func wantCorruptRefusal(t *testing.T, dir string, data []byte) {
	t.Helper()
	path := filepath.Join(dir, "gatehouse.db")
	d := launch(t, nil, loopbackArgs(dir)...)
	if d.awaitServing() {
		t.Fatalf("serving on %s from a corrupt store", d.addr)
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	out := d.stderr()
	if !strings.Contains(out, "corrupt") {
		t.Errorf("stderr %q does not mention corrupt", firstLine(out))
	}
	for _, crash := range []string{"panic:", "fatal error:", "goroutine "} {
		if strings.Contains(out, crash) {
			t.Errorf("stderr shows a crash (%q), want a clear error", firstLine(out))
			break
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, data) {
		t.Errorf("the corrupt file was modified (%d bytes, was %d)", len(after), len(data))
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func TestE2E_RefusesTruncatedStore(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	d := start(t, nil, loopbackArgs(src, "--demo")...)
	d.stop()
	full, err := os.ReadFile(filepath.Join(src, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	// The first pages hold the two meta pages and the freelist that
	// bbolt reads at open.
	for _, size := range []int{100, 4096, 6000, 8192, 12288} {
		if size >= len(full) {
			t.Fatalf("store file is only %d bytes", len(full))
		}
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			data := full[:size]
			if err := os.WriteFile(filepath.Join(dir, "gatehouse.db"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			wantCorruptRefusal(t, dir, data)
		})
	}
}

func TestE2E_RefusesLockedStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := start(t, nil, loopbackArgs(dir)...)
	second := launch(t, nil, loopbackArgs(dir)...)
	if second.awaitServing() {
		t.Fatalf("a second daemon serves %s from the store the first holds", second.addr)
	}
	if code := second.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("second daemon exit code 0, want non-zero")
	}
	out := second.stderr()
	if !strings.Contains(out, "locked by another process") {
		t.Errorf("second daemon stderr %q does not say the store is locked", out)
	}
	// It names the daemon holding the lock and how to stop it.
	if pid := strconv.Itoa(d.cmd.Process.Pid); !strings.Contains(out, "pid "+pid) || !strings.Contains(out, "kill -TERM "+pid) {
		t.Errorf("second daemon stderr %q does not name the first daemon's pid %s and how to stop it", out, pid)
	}
	c := dial(t, d.addr)
	resp, err := c.health.Check(testContext(t), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("first daemon health = %v, %v; want SERVING", resp, err)
	}
	d.stop()
}

// TestE2E_FailedStartLeavesNoStore: a daemon that cannot start — its
// listen or metrics address taken, a TLS key or an SMTP password file it
// cannot read — exits non-zero saying why, before it creates (or seeds) a
// store: the data directory stays empty.
func TestE2E_FailedStartLeavesNoStore(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	missing := filepath.Join(t.TempDir(), "missing")
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"listen taken":          {[]string{"--listen", taken.Addr().String()}, "address already in use"},
		"metrics taken":         {[]string{"--metrics-addr", taken.Addr().String()}, "address already in use"},
		"tls files unreadable":  {[]string{"--tls-cert", missing, "--tls-key", missing}, missing},
		"smtp password missing": {[]string{"--smtp-addr", "127.0.0.1:25", "--smtp-password-file", missing}, "smtp-password-file"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			d := launch(t, nil, loopbackArgs(dir, append([]string{"--demo"}, tc.args...)...)...)
			if code := d.awaitExit(30 * time.Second); code == 0 {
				t.Errorf("exit code 0; want non-zero")
			}
			if out := d.stderr(); !strings.Contains(out, tc.want) {
				t.Errorf("stderr %q does not say %q", out, tc.want)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 0 {
				t.Errorf("the data directory holds %v after a failed start; want nothing", entries)
			}
		})
	}
}

func TestE2E_DemoFlagSeeds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)
	d := start(t, nil, loopbackArgs(dir, "--demo")...)
	if e := d.mustLog("demo data"); e["seeded"] != true || e["account"] != "demo" {
		t.Errorf("demo data log entry %v, want seeded=true account=demo", e)
	}
	c := dial(t, d.addr)

	if _, err := c.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "demo"}); err != nil {
		t.Fatalf("GetAccount demo: %v", err)
	}
	alice, err := c.admin.GetRepresentative(ctx, &gatehousev1.GetRepresentativeRequest{AccountId: "demo", Id: "alice"})
	if err != nil {
		t.Fatalf("GetRepresentative alice: %v", err)
	}
	if !alice.GetRepresentative().GetLiveGuideEnabled() {
		t.Errorf("alice = %v, want live_guide_enabled", alice.GetRepresentative())
	}
	started, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{
		AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE,
		RepresentativeId: "alice", CustomerId: "cust-1",
	})
	if err != nil {
		t.Fatalf("StartSession for alice: %v", err)
	}
	sess := started.GetSession()
	checkDecision(ctx, t, c, click(sess.GetId(), agent("alice")), true, gatehousev1.Reason_REASON_ALLOWED, "site") // the demo allowlist entry that allows the page

	_, err = c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{
		AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE,
		RepresentativeId: "bob", CustomerId: "cust-2",
	})
	st := wantCode(t, "StartSession for bob", err, codes.FailedPrecondition)
	if ei := errorInfo(t, st); ei.GetReason() != "REP_NOT_ALLOWED" || ei.GetMetadata()["representative_id"] != "bob" {
		t.Errorf("StartSession for bob: ErrorInfo %v, want reason REP_NOT_ALLOWED for representative_id bob", ei)
	}

	// A change to the demo data, to see that a second --demo leaves it.
	upd, err := c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings:   &gatehousev1.LiveGuideSettings{AccountId: "demo", AgentClickRestricted: true},
		UpdateMask: mask("agent_click_restricted"),
	})
	if err != nil {
		t.Fatalf("UpdateLiveGuideSettings: %v", err)
	}
	reps, err := c.admin.ListRepresentatives(ctx, &gatehousev1.ListRepresentativesRequest{AccountId: "demo"})
	if err != nil {
		t.Fatalf("ListRepresentatives: %v", err)
	}
	d.stop()
	closedRev := logUint(t, d.mustLog("store closed"), "revision")
	// The banner's calls depend on the clients at hand (TestBanner_*).
	if want := "Gatehouse is serving on " + d.addr + ` with the demo account "demo"`; !strings.Contains(d.stderr(), want) {
		t.Errorf("no demo help with %q on stderr", want)
	}

	for restart := 1; restart <= 2; restart++ {
		d := start(t, nil, loopbackArgs(dir, "--demo")...)
		if e := d.mustLog("demo data"); e["seeded"] != false {
			t.Errorf("restart %d: demo data log entry %v, want seeded=false", restart, e)
		}
		serving := d.mustLog("serving")
		if got := logUint(t, serving, "revision"); got != closedRev {
			t.Errorf("restart %d: serving revision %d, want %d (no writes since)", restart, got, closedRev)
		}
		c := dial(t, d.addr)
		accts, err := c.admin.ListAccounts(ctx, &gatehousev1.ListAccountsRequest{})
		if err != nil {
			t.Fatalf("ListAccounts: %v", err)
		}
		if len(accts.GetAccounts()) != 1 || accts.GetAccounts()[0].GetId() != "demo" {
			t.Errorf("restart %d: accounts %v, want only demo", restart, accts.GetAccounts())
		}
		gotReps, err := c.admin.ListRepresentatives(ctx, &gatehousev1.ListRepresentativesRequest{AccountId: "demo"})
		if err != nil {
			t.Fatalf("ListRepresentatives: %v", err)
		}
		if !proto.Equal(gotReps, reps) {
			t.Errorf("restart %d: representatives %v, want %v", restart, gotReps, reps)
		}
		gs, err := c.admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "demo"})
		if err != nil {
			t.Fatalf("GetLiveGuideSettings: %v", err)
		}
		if !proto.Equal(gs.GetSettings(), upd.GetSettings()) {
			t.Errorf("restart %d: settings %v, want %v as changed", restart, gs.GetSettings(), upd.GetSettings())
		}
		gotSess, err := c.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: sess.GetId()})
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		if !proto.Equal(gotSess.GetSession(), sess) {
			t.Errorf("restart %d: session %v, want %v", restart, gotSess.GetSession(), sess)
		}
		checkDecision(ctx, t, c, click(sess.GetId(), agent("alice")),
			false, gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, "agent_click_restricted")
		d.stop()
		if got := logUint(t, d.mustLog("store closed"), "revision"); got != closedRev {
			t.Errorf("restart %d: store closed at revision %d, want %d", restart, got, closedRev)
		}
	}
}

func TestE2E_DemoFlagLeavesExistingDataAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)
	d := start(t, nil, loopbackArgs(dir)...)
	c := dial(t, d.addr)
	if _, err := c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{
		Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"},
	}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	d.stop()

	d = start(t, nil, loopbackArgs(dir, "--demo")...)
	if e := d.mustLog("demo data"); e["seeded"] != false {
		t.Errorf("demo data log entry %v, want seeded=false on a store with an account", e)
	}
	c = dial(t, d.addr)
	_, err := c.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "demo"})
	wantCode(t, "GetAccount demo", err, codes.NotFound)
	if _, err := c.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "acme"}); err != nil {
		t.Errorf("GetAccount acme: %v", err)
	}
	d.stop()
}

func TestE2E_ErrorDetails(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := start(t, nil, loopbackArgs(t.TempDir())...)
	c := dial(t, d.addr)

	_, err := c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{
		Account: &gatehousev1.Account{Id: "Not_A_Slug"},
	})
	st := wantCode(t, "CreateAccount with a bad id and no name", err, codes.InvalidArgument)
	if got := violationFields(t, st); !slices.Equal(got, []string{"account.id", "account.display_name"}) {
		t.Errorf("CreateAccount violations %q, want account.id and account.display_name", got)
	}

	if _, err := c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{
		Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"},
	}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	_, err = c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{
		Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme again"},
	})
	wantCode(t, "CreateAccount of a taken id", err, codes.AlreadyExists)

	_, err = c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings:   &gatehousev1.LiveGuideSettings{AccountId: "acme"},
		UpdateMask: mask("agent_click_restricted", "etag"),
	})
	st = wantCode(t, "UpdateLiveGuideSettings with a bad mask path", err, codes.InvalidArgument)
	if got := violationFields(t, st); !slices.Equal(got, []string{"update_mask.paths[1]"}) {
		t.Errorf("UpdateLiveGuideSettings violations %q, want update_mask.paths[1]", got)
	}

	_, err = c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings:   &gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true, Etag: "stale"},
		UpdateMask: mask("agent_click_restricted"),
	})
	st = wantCode(t, "UpdateLiveGuideSettings with a stale etag", err, codes.Aborted)
	if r := errorInfo(t, st).GetReason(); r != "ETAG_MISMATCH" {
		t.Errorf("stale etag: ErrorInfo reason %q, want ETAG_MISMATCH", r)
	}

	_, err = c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{
		AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE,
		RepresentativeId: "nobody", CustomerId: "cust-1",
	})
	wantCode(t, "StartSession for an unknown representative", err, codes.NotFound)

	_, err = c.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{
		SessionId: "s-1", Actor: &gatehousev1.Actor{Id: "alice"}, Feature: gatehousev1.Feature_FEATURE_CLICK,
	})
	st = wantCode(t, "CheckFeature without role or URL", err, codes.InvalidArgument)
	if got := violationFields(t, st); !slices.Equal(got, []string{"actor.role", "url"}) {
		t.Errorf("CheckFeature violations %q, want actor.role and url", got)
	}

	_, err = c.decide.CheckFeature(ctx, click("s-unknown", agent("alice")))
	wantCode(t, "CheckFeature of an unknown session", err, codes.NotFound)
	d.stop()
}

func TestE2E_HealthAndReflection(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := start(t, nil, loopbackArgs(t.TempDir())...)
	c := dial(t, d.addr)

	for _, svc := range []string{"", "gatehouse.v1.DecisionService", "gatehouse.v1.AdminService", "gatehouse.v1.SessionService"} {
		resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health Check(%q) = %v, %v; want SERVING", svc, resp, err)
		}
	}
	_, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	wantCode(t, "health Check of an unknown service", err, codes.NotFound)

	stream, err := reflectionpb.NewServerReflectionClient(c.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatalf("reflection Send: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection Recv: %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{
		"gatehouse.v1.DecisionService", "gatehouse.v1.AdminService", "gatehouse.v1.SessionService", "grpc.health.v1.Health",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %q, want %s among them", names, want)
		}
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "gatehouse.v1.DecisionService"},
	}); err != nil {
		t.Fatalf("reflection Send: %v", err)
	}
	resp, err = stream.Recv()
	if err != nil {
		t.Fatalf("reflection Recv: %v", err)
	}
	if len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Errorf("reflection has no file for gatehouse.v1.DecisionService: %v", resp)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	d.stop()
}

// TestE2E_SessionLifecycleFlags: the daemon runs the session sweeper with
// its flags: a restart with a --session-max-age the session has outlived
// ends it at start (logged, SESSION_ENDED), and one with a
// --session-retention it has outlived deletes it (NOT_FOUND).
func TestE2E_SessionLifecycleFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)
	d := start(t, nil, loopbackArgs(dir)...)
	c := dial(t, d.addr)
	id := setupSession(t, c)
	checkDecision(ctx, t, c, click(id, agent("alice")), true, gatehousev1.Reason_REASON_ALLOWED, "")
	d.stop()

	time.Sleep(10 * time.Millisecond) // the session is now older than 5 ms
	d = start(t, nil, loopbackArgs(dir, "--session-max-age", "5ms", "--session-retention", "0")...)
	c = dial(t, d.addr)
	if got := logUint(t, d.awaitLog("swept sessions"), "ended"); got != 1 {
		t.Fatalf("the sweep at start ended %d sessions; want 1", got)
	}
	checkDecision(ctx, t, c, click(id, agent("alice")), false, gatehousev1.Reason_REASON_SESSION_ENDED, "")
	d.stop()

	time.Sleep(10 * time.Millisecond)
	d = start(t, nil, loopbackArgs(dir, "--session-retention", "5ms")...)
	c = dial(t, d.addr)
	if got := logUint(t, d.awaitLog("swept sessions"), "deleted"); got != 1 {
		t.Fatalf("the sweep at start deleted %d sessions; want 1", got)
	}
	_, err := c.decide.CheckFeature(ctx, click(id, agent("alice")))
	wantCode(t, "CheckFeature in a deleted session", err, codes.NotFound)
}
