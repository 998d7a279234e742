package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// Bounds of the end-to-end tests. The start covers three etcd processes
// and two daemons on a busy machine.
const (
	readyTimeout = 120 * time.Second // until the banner is printed
	exitTimeout  = 60 * time.Second  // until the supervisor exits after a signal
	callTimeout  = 60 * time.Second  // for the calls of one test
)

var build struct {
	once                     sync.Once
	dir                      string
	cluster, gatehoused, cli string
	err                      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// binaries builds the supervisor, the daemon and the admin CLI once per
// test run; etcd comes from etcdtest.Binary (bin/etcd, built when missing).
func binaries(t *testing.T) (cluster, gatehoused, cli, etcd string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs an etcd cluster and daemons; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads child processes from /proc")
	}
	build.once.Do(func() {
		if build.dir, build.err = os.MkdirTemp("", "gatehouse-cluster-e2e-"); build.err != nil {
			return
		}
		for _, b := range []struct {
			out *string
			pkg string
		}{{&build.cluster, "."}, {&build.gatehoused, "../gatehoused"}, {&build.cli, "../gatehouse"}} {
			*b.out = filepath.Join(build.dir, filepath.Base(filepath.Clean(b.pkg)))
			if b.pkg == "." {
				*b.out = filepath.Join(build.dir, "gatehouse-cluster")
			}
			out, err := exec.Command("go", "build", "-buildvcs=false", "-o", *b.out, b.pkg).CombinedOutput()
			if err != nil {
				build.err = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.cluster, build.gatehoused, build.cli, etcdtest.Binary(t)
}

// addrs are the loopback addresses of one test cluster, free when picked.
type addrs struct {
	clients, peers, listen, http, metrics []string
}

func freeAddrs(t *testing.T) addrs {
	t.Helper()
	var ls []net.Listener
	take := func(n int) []string {
		var out []string
		for range n {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ls = append(ls, l)
			out = append(out, l.Addr().String())
		}
		return out
	}
	a := addrs{clients: take(3), peers: take(3), listen: take(2), http: take(2), metrics: take(2)}
	for _, l := range ls {
		_ = l.Close()
	}
	return a
}

func (a addrs) args() []string {
	j := func(l []string) string { return strings.Join(l, ",") }
	return []string{"--etcd-client-addrs", j(a.clients), "--etcd-peer-addrs", j(a.peers),
		"--listen", j(a.listen), "--http-addrs", j(a.http), "--metrics-addrs", j(a.metrics)}
}

// syncBuffer is a bytes.Buffer safe for a writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// supervisor is one gatehouse-cluster process.
type supervisor struct {
	t              *testing.T
	cmd            *exec.Cmd
	dir            string
	stdout, stderr *syncBuffer
	exited         chan struct{}
}

// launch starts gatehouse-cluster on dir with a and extra arguments; the
// process and, through it, its children are stopped when the test ends.
func launch(t *testing.T, dir string, a addrs, extra ...string) *supervisor {
	t.Helper()
	cluster, gatehoused, cli, etcd := binaries(t)
	args := append([]string{"--dir", dir, "--etcd-bin", etcd, "--gatehoused-bin", gatehoused,
		"--cli-bin", cli, "--grpcurl-bin", filepath.Join(dir, "no-grpcurl")}, a.args()...)
	s := &supervisor{t: t, dir: dir, stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(cluster, append(args, extra...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	// No GATEHOUSE_ variable of the test's environment reaches the daemons.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") || strings.HasPrefix(kv, etcdtest.BinaryEnv+"=") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(exitTimeout):
				_ = s.cmd.Process.Kill()
				<-s.exited
			}
		}
		if t.Failed() {
			t.Logf("gatehouse-cluster stdout:\n%s\nstderr:\n%s", s.stdout, s.stderr)
		}
	})
	return s
}

// bannerEnd is the banner's last line.
const bannerEnd = "Ctrl-C stops every process"

// start launches gatehouse-cluster and waits for its banner.
func start(t *testing.T, dir string, a addrs, extra ...string) *supervisor {
	t.Helper()
	s := launch(t, dir, a, extra...)
	deadline := time.After(readyTimeout)
	for !strings.Contains(s.stdout.String(), bannerEnd) {
		select {
		case <-s.exited:
			t.Fatalf("gatehouse-cluster exited (%v) before its banner", s.cmd.ProcessState)
		case <-deadline:
			t.Fatalf("gatehouse-cluster printed no banner within %v", readyTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return s
}

// awaitExit waits for the supervisor to exit and returns its exit code.
func (s *supervisor) awaitExit() int {
	s.t.Helper()
	select {
	case <-s.exited:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(exitTimeout):
		s.t.Fatalf("gatehouse-cluster did not exit within %v", exitTimeout)
		return -1
	}
}

// interrupt sends SIGINT (Ctrl-C) and returns the exit code.
func (s *supervisor) interrupt() int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		s.t.Fatal(err)
	}
	return s.awaitExit()
}

// awaitStderr waits until the supervisor's stderr matches re.
func (s *supervisor) awaitStderr(re *regexp.Regexp) {
	s.t.Helper()
	deadline := time.Now().Add(callTimeout)
	for !re.MatchString(s.stderr.String()) {
		if time.Now().After(deadline) {
			s.t.Fatalf("gatehouse-cluster's stderr does not match %q", re)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// child is a process as /proc shows it; start (clock ticks after boot)
// tells it from a later process that got the same pid.
type child struct {
	pid     int
	start   string
	cmdline string
}

// procStat returns the parent pid, state and start time of pid.
func procStat(pid int) (ppid int, state, start string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", "", err
	}
	// The command name is in parentheses and may hold anything.
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	f := strings.Fields(rest) // f[0] is field 3 (state)
	if len(f) < 20 {
		return 0, "", "", fmt.Errorf("short /proc/%d/stat", pid)
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0], f[19], nil
}

// children lists the processes whose parent is pid, read from /proc.
func children(t *testing.T, pid int) []child {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []child
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, _, start, err := procStat(p)
		if err != nil || ppid != pid {
			continue
		}
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		out = append(out, child{pid: p, start: start, cmdline: strings.ReplaceAll(string(cl), "\x00", " ")})
	}
	return out
}

// alive reports whether c still runs (a zombie has exited).
func (c child) alive() bool {
	_, state, start, err := procStat(c.pid)
	return err == nil && start == c.start && state != "Z"
}

// mustChildren returns the supervisor's children, checking that they are
// the three etcd members and the two daemons.
func (s *supervisor) mustChildren() []child {
	s.t.Helper()
	cs := children(s.t, s.cmd.Process.Pid)
	etcds, daemons := 0, 0
	for _, c := range cs {
		switch {
		case strings.Contains(c.cmdline, "etcd --name m"):
			etcds++
		case strings.Contains(c.cmdline, "gatehoused --store etcd"):
			daemons++
		}
	}
	if etcds != 3 || daemons != 2 || len(cs) != 5 {
		s.t.Fatalf("gatehouse-cluster's children: %d etcd, %d gatehoused, %d in all; want 3, 2, 5: %v", etcds, daemons, len(cs), cs)
	}
	return cs
}

// mustAllExited fails the test when any of cs still runs.
func mustAllExited(t *testing.T, cs []child) {
	t.Helper()
	for _, c := range cs {
		if c.alive() {
			t.Errorf("child %d (%s) still runs after gatehouse-cluster exited", c.pid, c.cmdline)
			_ = syscall.Kill(c.pid, syscall.SIGKILL)
		}
	}
}

// member returns the child that is etcd member name.
func member(t *testing.T, cs []child, name string) child {
	t.Helper()
	for _, c := range cs {
		if strings.Contains(c.cmdline, "--name "+name+" ") {
			return c
		}
	}
	t.Fatalf("no child is etcd member %s: %v", name, cs)
	return child{}
}

type clients struct {
	admin    gatehousev1.AdminServiceClient
	sessions gatehousev1.SessionServiceClient
	decide   gatehousev1.DecisionServiceClient
}

func dial(t *testing.T, addr string) clients {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return clients{gatehousev1.NewAdminServiceClient(conn), gatehousev1.NewSessionServiceClient(conn), gatehousev1.NewDecisionServiceClient(conn)}
}

func clickAt(session string, rev uint64) *gatehousev1.CheckFeatureRequest {
	return &gatehousev1.CheckFeatureRequest{SessionId: session, Actor: &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: "alice"},
		Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/", MinRevision: rev}
}

// mustDecide calls CheckFeature and checks the reason and that the answer
// is from at least the request's min_revision.
func mustDecide(ctx context.Context, t *testing.T, c clients, req *gatehousev1.CheckFeatureRequest, want gatehousev1.Reason) {
	t.Helper()
	resp, err := c.decide.CheckFeature(ctx, req)
	if err != nil {
		t.Fatalf("CheckFeature(%v): %v", req, err)
	}
	if got := resp.GetDecision().GetReason(); got != want {
		t.Fatalf("CheckFeature(%v) = %v, want %v", req, got, want)
	}
	if resp.GetRevision() < req.GetMinRevision() {
		t.Fatalf("CheckFeature answered at revision %d, before min_revision %d", resp.GetRevision(), req.GetMinRevision())
	}
}

// setClickRestricted writes agent_click_restricted on c, retrying while
// etcd is unavailable (a new etcd leader being elected), and returns the
// write's revision.
func setClickRestricted(ctx context.Context, t *testing.T, c clients, on bool) uint64 {
	t.Helper()
	for {
		resp, err := c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
			Settings:   &gatehousev1.LiveGuideSettings{AccountId: demoAccount, AgentClickRestricted: on},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"agent_click_restricted"}},
		})
		if err == nil {
			return resp.GetSettings().GetRevision()
		}
		if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
			t.Fatalf("UpdateLiveGuideSettings(agent_click_restricted=%v): %v", on, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// etcdLeader returns the name of the member that leads the etcd cluster.
func etcdLeader(ctx context.Context, t *testing.T, a addrs) string {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: a.clients, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for i, ep := range a.clients {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			t.Fatalf("etcd status of %s: %v", ep, err)
		}
		if st.Header.GetMemberId() == st.Leader {
			return memberName(i)
		}
	}
	t.Fatal("no etcd member leads")
	return ""
}

// seededCount counts the daemons' log lines saying they seeded the demo
// data, over every run on dir.
func seededCount(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, name := range []string{"a", "b"} {
		b, err := os.ReadFile(filepath.Join(dir, "gatehoused-"+name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(b), `msg="demo data" seeded=true`)
	}
	return n
}

// TestCluster_ServesAcrossReplicasAndOutlivesAnEtcdMember: both replicas
// decide on the demo data, seeded once; a write on the first is decided
// on by the second at the write's revision; the banner's CLI lines do
// what it says; with the etcd leader killed the cluster still takes
// writes, the supervisor reports the death, and Ctrl-C stops every child
// and exits non-zero (a member died).
func TestCluster_ServesAcrossReplicasAndOutlivesAnEtcdMember(t *testing.T) {
	t.Parallel()
	a, dir := freeAddrs(t), t.TempDir()
	s := start(t, dir, a)
	kids := s.mustChildren()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	ra, rb := dial(t, a.listen[0]), dial(t, a.listen[1])

	if n := seededCount(t, dir); n != 1 {
		t.Errorf("%d replicas say they seeded the demo data, want 1", n)
	}
	started, err := ra.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: demoAccount,
		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
	if err != nil {
		t.Fatalf("StartSession on a: %v", err)
	}
	sess := started.GetSession().GetId()
	for _, c := range []clients{ra, rb} {
		mustDecide(ctx, t, c, clickAt(sess, started.GetSession().GetRevision()), gatehousev1.Reason_REASON_ALLOWED)
	}
	rev := setClickRestricted(ctx, t, ra, true)
	mustDecide(ctx, t, rb, clickAt(sess, rev), gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED)

	// The banner's walk-through, run as printed (on a fresh session).
	setClickRestricted(ctx, t, ra, false)
	runBannerCLI(t, s.stdout.String())

	checkBannerHTTP(ctx, t, s.stdout.String())

	// Kill the etcd leader: a new one is elected and writes go on.
	leader := etcdLeader(ctx, t, a)
	victim := member(t, kids, leader)
	if err := syscall.Kill(victim.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.awaitStderr(regexp.MustCompile(`etcd ` + leader + ` \(pid ` + strconv.Itoa(victim.pid) + `\) was killed by SIGKILL`))
	rev = setClickRestricted(ctx, t, ra, false)
	mustDecide(ctx, t, rb, clickAt(sess, rev), gatehousev1.Reason_REASON_ALLOWED)
	rev = setClickRestricted(ctx, t, rb, true)
	mustDecide(ctx, t, ra, clickAt(sess, rev), gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED)

	if code := s.interrupt(); code != 1 {
		t.Errorf("gatehouse-cluster exited %d after Ctrl-C with a member dead, want 1", code)
	}
	mustAllExited(t, kids)
	if !strings.Contains(s.stderr.String(), "etcd "+leader+" ended without being asked to") {
		t.Errorf("stderr does not name the member that died")
	}
}

// runBannerCLI runs the admin CLI lines of the banner in order, filling
// in the session id and the revision from the answers before them, and
// checks that the last decision is the denial the banner promises.
func runBannerCLI(t *testing.T, banner string) {
	t.Helper()
	_, _, cli, _ := binaries(t)
	var session, revision, written, last string
	ran := 0
	sc := bufio.NewScanner(strings.NewReader(banner))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, cli+" ") {
			continue
		}
		if strings.Contains(line, "<revision>") {
			written = revision
		}
		line = strings.ReplaceAll(strings.ReplaceAll(line, "<session id>", session), "<revision>", revision)
		f := strings.Fields(line)
		out, err := exec.Command(f[0], f[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("banner line %q: %v\n%s", line, err, out)
		}
		ran++
		last = string(out)
		for _, l := range strings.Split(last, "\n") {
			k := strings.Fields(l)
			switch {
			case len(k) == 2 && k[0] == "id" && strings.HasPrefix(k[1], "s-"):
				session = k[1]
			case len(k) == 2 && k[0] == "revision":
				revision = k[1]
			}
		}
	}
	if ran < 5 || session == "" {
		t.Fatalf("ran %d CLI lines of the banner (session %q):\n%s", ran, session, banner)
	}
	// The decision is the last line's answer, at the write's revision or
	// later.
	if !strings.Contains(last, "AGENT_CLICK_RESTRICTED") {
		t.Errorf("the banner's last CLI line answered:\n%s\nwant a denial AGENT_CLICK_RESTRICTED", last)
	}
	w, _ := strconv.ParseUint(written, 10, 64)
	if at, _ := strconv.ParseUint(revision, 10, 64); w == 0 || at < w {
		t.Errorf("the decision was answered at revision %q, the write before it returned %q", revision, written)
	}
}

// checkBannerHTTP fetches the banner's curl URLs: the HTTP/JSON API
// answers with the demo account's settings, the metrics pages with
// gatehouse_leader, 1 on exactly one replica.
func checkBannerHTTP(ctx context.Context, t *testing.T, banner string) {
	t.Helper()
	urls := regexp.MustCompile(`curl -s (http://\S+)`).FindAllStringSubmatch(banner, -1)
	if len(urls) != 3 {
		t.Fatalf("the banner has %d curl lines, want 3 (settings, two metrics pages):\n%s", len(urls), banner)
	}
	get := func(u string) string {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s, %v", u, resp.Status, err)
		}
		return string(body)
	}
	if body := get(urls[0][1]); !strings.Contains(urls[0][1], "/liveGuideSettings") || !strings.Contains(body, `"account_id":"demo"`) {
		t.Errorf("GET %s: %s; want the demo account's settings", urls[0][1], body)
	}
	// The election may still be settling: wait a little for one leader.
	var samples []string
	for deadline := time.Now().Add(15 * time.Second); ; {
		samples = samples[:0]
		for _, u := range urls[1:] {
			samples = append(samples, regexp.MustCompile(`(?m)^gatehouse_leader \d$`).FindString(get(u[1])))
		}
		if slices.Equal(samples, []string{"gatehouse_leader 1", "gatehouse_leader 0"}) || slices.Equal(samples, []string{"gatehouse_leader 0", "gatehouse_leader 1"}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the banner's metrics pages show %q; want gatehouse_leader 1 on exactly one replica", samples)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCluster_RestartsOnItsData: Ctrl-C stops everything with exit 0; a
// second run on the directory restarts the same etcd cluster with what
// the first wrote and seeds nothing again; a run that asks for other
// peer addresses is refused before it starts anything.
func TestCluster_RestartsOnItsData(t *testing.T) {
	t.Parallel()
	a, dir := freeAddrs(t), t.TempDir()
	s := start(t, dir, a)
	kids := s.mustChildren()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	if _, err := dial(t, a.listen[0]).admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if code := s.interrupt(); code != 0 {
		t.Fatalf("gatehouse-cluster exited %d after Ctrl-C, want 0", code)
	}
	mustAllExited(t, kids)

	s = start(t, dir, a)
	kids = s.mustChildren()
	got, err := dial(t, a.listen[1]).admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "acme"})
	if err != nil || got.GetAccount().GetDisplayName() != "Acme" {
		t.Fatalf("GetAccount on the second run = %v, %v; want the first run's account", got, err)
	}
	if n := seededCount(t, dir); n != 1 {
		t.Errorf("the demo data was seeded %d times over two runs, want 1", n)
	}
	if code := s.interrupt(); code != 0 {
		t.Fatalf("gatehouse-cluster exited %d after the second Ctrl-C, want 0", code)
	}
	mustAllExited(t, kids)

	moved := a
	moved.peers = freeAddrs(t).peers
	s = launch(t, dir, moved)
	if code := s.awaitExit(); code != 1 {
		t.Errorf("gatehouse-cluster with other peer addresses exited %d, want 1", code)
	}
	if out := s.stderr.String(); !strings.Contains(out, "--etcd-peer-addrs "+strings.Join(a.peers, ",")) {
		t.Errorf("the refusal does not name the cluster's peer addresses:\n%s", out)
	}
	if log, err := os.ReadFile(filepath.Join(dir, "etcd-m0.log")); err != nil || strings.Contains(string(log), moved.peers[0]) {
		t.Errorf("the refused run started etcd (%v)", err)
	}
}

// TestCluster_StopsTheRestWhenTheLastReplicaDies: with every replica
// gone there is nothing left to serve: the supervisor stops the etcd
// members by itself and exits non-zero.
func TestCluster_StopsTheRestWhenTheLastReplicaDies(t *testing.T) {
	t.Parallel()
	a, dir := freeAddrs(t), t.TempDir()
	s := start(t, dir, a)
	kids := s.mustChildren()
	for _, c := range kids {
		if strings.Contains(c.cmdline, "gatehoused") {
			if err := syscall.Kill(c.pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	if code := s.awaitExit(); code != 1 {
		t.Errorf("gatehouse-cluster exited %d after its replicas died, want 1", code)
	}
	mustAllExited(t, kids)
	if out := s.stderr.String(); !strings.Contains(out, "every gatehoused replica has exited") {
		t.Errorf("stderr does not say why it stopped:\n%s", out)
	}
}

// TestCluster_FailedStartStopsEverything: a replica that cannot start
// stops the start: the supervisor stops what it started, shows the
// replica's error and exits non-zero.
func TestCluster_FailedStartStopsEverything(t *testing.T) {
	t.Parallel()
	a, dir := freeAddrs(t), t.TempDir()
	s := launch(t, dir, a, "--", "--no-such-flag")
	var seen []child
	for {
		for _, c := range children(t, s.cmd.Process.Pid) {
			if !containsPid(seen, c.pid) {
				seen = append(seen, c)
			}
		}
		select {
		case <-s.exited:
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("gatehouse-cluster exited %d after a replica failed to start, want 1", code)
	}
	if len(seen) < 3 {
		t.Errorf("saw %d children during the start, want at least the 3 etcd members", len(seen))
	}
	mustAllExited(t, seen)
	if out := s.stderr.String(); !strings.Contains(out, "no-such-flag") {
		t.Errorf("stderr does not show the replica's error:\n%s", out)
	}
	if strings.Contains(s.stdout.String(), bannerEnd) {
		t.Error("the banner was printed though the start failed")
	}
}

func containsPid(cs []child, pid int) bool {
	for _, c := range cs {
		if c.pid == pid {
			return true
		}
	}
	return false
}

// TestCluster_KilledSupervisorLeavesNoChild: a supervisor killed without
// a chance to stop its children (kill -9) still leaves none running.
func TestCluster_KilledSupervisorLeavesNoChild(t *testing.T) {
	t.Parallel()
	a, dir := freeAddrs(t), t.TempDir()
	s := start(t, dir, a)
	kids := s.mustChildren()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.exited
	deadline := time.Now().Add(exitTimeout)
	for {
		left := 0
		for _, c := range kids {
			if c.alive() {
				left++
			}
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			mustAllExited(t, kids)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
