//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// soakSample is one "stats" log entry of the daemon under load.
type soakSample struct {
	at                                          time.Duration
	goroutines, heap, rss, anon, mapped, fileSz uint64
	revision, calls                             uint64
}

// TestSoak runs a steady mixed load against the real daemon for SOAK_TIME
// (`make soak`; skipped without it): decisions single and batched, settings
// toggles, accounts created, used and deleted, allowlist entries created and
// deleted, policy watches opened and cancelled, connections opened and
// closed. The daemon logs its goroutines and memory every SOAK_TIME/40; the
// test prints them and fails when goroutines or heap keep growing after the
// warm-up, or goroutines do not return to their idle level once the load
// stops. The state the load leaves behind is bounded (churned accounts are
// deleted, audit events expire after a minute), so growth means a leak.
func TestSoak(t *testing.T) {
	v := os.Getenv("SOAK_TIME")
	if v == "" {
		t.Skip("set SOAK_TIME (for example 10m) to run the soak test; see make soak")
	}
	dur, err := time.ParseDuration(v)
	if err != nil || dur < 10*time.Second {
		t.Fatalf("SOAK_TIME=%q: want a duration of at least 10s", v)
	}
	binary(t)
	interval := max(dur/40, time.Second)
	dir := t.TempDir()
	d := startQuiet(t, loopbackArgs(dir, "--demo", "--stats-interval", interval.String(), "--audit-retention", "1m")...)
	c := dial(t, d.addr)
	idle := waitStats(t, d, 0)

	ctx, stop := context.WithTimeout(context.Background(), dur)
	defer stop()
	var calls, failures atomic.Uint64
	var firstErr sync.Once
	note := func(err error) {
		calls.Add(1)
		if err != nil && ctx.Err() == nil {
			failures.Add(1)
			firstErr.Do(func() { t.Errorf("first failed call under load: %v", err) })
		}
	}
	sessions := make([]string, 8)
	for i := range sessions {
		resp, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
		if err != nil {
			t.Fatal(err)
		}
		sessions[i] = resp.GetSession().GetId()
	}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				req := click(sessions[(i+w)%len(sessions)], agent("alice"))
				if i%10 == 0 {
					batch := make([]*gatehousev1.CheckFeatureRequest, 50)
					for j := range batch {
						batch[j] = req
					}
					_, err := c.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: batch})
					note(err)
					continue
				}
				_, err := c.decide.CheckFeature(ctx, req)
				note(err)
			}
		})
	}
	wg.Go(func() { // settings toggles
		for v := false; ctx.Err() == nil; v = !v {
			_, err := c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
				Settings: &gatehousev1.LiveGuideSettings{AccountId: "demo", Chat: v}, UpdateMask: mask("chat")})
			note(err)
			time.Sleep(10 * time.Millisecond)
		}
	})
	wg.Go(func() { // accounts created, used and deleted
		for i := 0; ctx.Err() == nil; i++ {
			id := fmt.Sprintf("churn-%d", i%4)
			_, err := c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: id, DisplayName: id}})
			note(err)
			_, err = c.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: id, Representative: &gatehousev1.Representative{Id: "rep", DisplayName: "Rep", LiveGuideEnabled: true}})
			note(err)
			s, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: id, Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "rep", CustomerId: "c"})
			note(err)
			if err == nil {
				_, err = c.decide.CheckFeature(ctx, click(s.GetSession().GetId(), agent("rep")))
				note(err)
				_, err = c.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: s.GetSession().GetId()})
				note(err)
			}
			_, err = c.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: id})
			note(err)
			time.Sleep(20 * time.Millisecond)
		}
	})
	wg.Go(func() { // allowlist entries created and deleted
		for i := 0; ctx.Err() == nil; i++ {
			id := fmt.Sprintf("soak-%d", i%16)
			_, err := c.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "demo", Entry: &gatehousev1.AllowlistEntry{Id: id, Pattern: id + ".example.net"}})
			note(err)
			_, err = c.admin.DeleteAllowlistEntry(ctx, &gatehousev1.DeleteAllowlistEntryRequest{AccountId: "demo", Id: id})
			note(err)
			time.Sleep(20 * time.Millisecond)
		}
	})
	wg.Go(func() { // watches opened and cancelled
		for i := 0; ctx.Err() == nil; i++ {
			wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			w, err := c.decide.WatchSessionPolicy(wctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: sessions[i%len(sessions)], Actor: customer("cust-1")})
			if err == nil {
				_, err = w.Recv()
			}
			note(err)
			<-wctx.Done()
			cancel()
		}
	})
	wg.Go(func() { // connections opened and closed
		for ctx.Err() == nil {
			conn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				note(err)
				continue
			}
			_, err = gatehousev1.NewDecisionServiceClient(conn).CheckFeature(ctx, click(sessions[0], agent("alice")))
			note(err)
			_ = conn.Close()
			time.Sleep(20 * time.Millisecond)
		}
	})

	var samples []soakSample
	began := time.Now()
	seen := 1
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
		for _, e := range statsEntries(d)[seen:] {
			seen++
			s := toSample(t, e, time.Since(began))
			s.calls = calls.Load()
			if fi, err := os.Stat(filepath.Join(dir, "gatehouse.db")); err == nil {
				s.fileSz = uint64(fi.Size())
			}
			samples = append(samples, s)
		}
	}
	wg.Wait()
	// Quiet: let per-call goroutines and idle connections go away.
	time.Sleep(3 * interval)
	after := waitStats(t, d, seen+1)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("daemon exit after SIGTERM: %v", err)
	}

	t.Logf("%8s %10s %12s %12s %12s %12s %12s %10s %10s", "elapsed", "goroutines", "heap", "rss", "rss_anon", "rss_file", "db_file", "revision", "calls")
	for _, s := range samples {
		t.Logf("%8s %10d %12d %12d %12d %12d %12d %10d %10d", s.at.Round(time.Second), s.goroutines, s.heap, s.rss, s.anon, s.mapped, s.fileSz, s.revision, s.calls)
	}
	t.Logf("idle before: %d goroutines, rss %d (anon %d); idle after: %d goroutines, rss %d (anon %d); %d calls, %d failed",
		idle.goroutines, idle.rss, idle.anon, after.goroutines, after.rss, after.anon, calls.Load(), failures.Load())
	if len(samples) < 10 {
		t.Fatalf("only %d samples", len(samples))
	}
	warm := samples[len(samples)/5 : 2*len(samples)/5]
	late := samples[4*len(samples)/5:]
	maxOf := func(ss []soakSample, f func(soakSample) uint64) uint64 {
		var m uint64
		for _, s := range ss {
			m = max(m, f(s))
		}
		return m
	}
	median := func(ss []soakSample, f func(soakSample) uint64) uint64 {
		v := make([]uint64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	gor := func(s soakSample) uint64 { return s.goroutines }
	heap := func(s soakSample) uint64 { return s.heap }
	anon := func(s soakSample) uint64 { return s.anon }
	if a, b := maxOf(warm, gor), maxOf(late, gor); b > a+a/2+20 {
		t.Errorf("goroutines grew under steady load: at most %d after warm-up, %d at the end", a, b)
	}
	if a, b := median(warm, heap), median(late, heap); b > 2*a+16<<20 {
		t.Errorf("heap grew under steady load: median %d after warm-up, %d at the end", a, b)
	}
	// Resident pages of the mapped store file (rss_file) follow the file,
	// which grows until freed pages are reused; anonymous memory is what
	// a leak would grow.
	if a, b := median(warm, anon), median(late, anon); b > 2*a+32<<20 {
		t.Errorf("anonymous RSS grew under steady load: median %d after warm-up, %d at the end", a, b)
	}
	if after.goroutines > idle.goroutines+10 {
		t.Errorf("%d goroutines once the load stopped, %d before it started", after.goroutines, idle.goroutines)
	}
	if failures.Load() > 0 {
		t.Errorf("%d of %d calls failed", failures.Load(), calls.Load())
	}
}

// quietDaemon is a daemon whose log is read but not kept, except its
// "stats" entries: a soak run logs a line per call.
type quietDaemon struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	stat []map[string]any
}

func startQuiet(t *testing.T, args ...string) *quietDaemon {
	t.Helper()
	d := &quietDaemon{cmd: exec.Command(binary(t), args...)}
	d.cmd.Env = environ()
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.cmd.Process.Kill() })
	serving := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, `"msg":"stats"`) && !strings.Contains(line, `"msg":"serving"`) {
				continue
			}
			e, ok := parseLog(line)
			if !ok {
				continue
			}
			if e["msg"] == "serving" {
				addr, _ := e["listen"].(string)
				serving <- addr
				continue
			}
			d.mu.Lock()
			d.stat = append(d.stat, e)
			d.mu.Unlock()
		}
	}()
	select {
	case d.addr = <-serving:
	case <-time.After(startTimeout):
		t.Fatal("the daemon did not serve")
	}
	return d
}

func statsEntries(d *quietDaemon) []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.stat)
}

// waitStats waits for the n-th stats entry (0-based) and returns it.
func waitStats(t *testing.T, d *quietDaemon, n int) soakSample {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if es := statsEntries(d); len(es) > n {
			return toSample(t, es[n], 0)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stats entry %d", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func toSample(t *testing.T, e map[string]any, at time.Duration) soakSample {
	t.Helper()
	return soakSample{at: at, goroutines: logUint(t, e, "goroutines"), heap: logUint(t, e, "heap_alloc"),
		rss: logUint(t, e, "rss"), anon: logUint(t, e, "rss_anon"), mapped: logUint(t, e, "rss_file"), revision: logUint(t, e, "revision")}
}
