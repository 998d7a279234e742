package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/loadgen"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// The hostile callers' sizes: what a security review found one caller can
// ask of the daemon within its documented limits.
const (
	// hostileMetaStreams is how many health-watch and reflection streams
	// the hostile callers try to hold: more than the daemon's default
	// --max-meta-streams, so that the pool is full and some are refused.
	hostileMetaStreams = server.DefaultMaxMetaStreams + 8
	// hostileWatchers is how many WatchSessionPolicy streams they hold on
	// one account (the default per-caller maximum).
	hostileWatchers = server.DefaultMaxStreamsPerCaller
	// hostileAncestors shapes the expensive clicks: 256 ancestors (the
	// request bound), each with a data-x attribute as long as the bound
	// of one element's encoded size (server.MaxElementBytes) allows.
	hostileAncestors = 256
	// hostileRuleLen is the length of the substring the expensive
	// privacy rules look for, case-insensitively, in every ancestor.
	hostileRuleLen = 1000
	// hostileClickers and hostileLoggers are the callers sending the
	// expensive clicks and flooding the decision log.
	hostileClickers = 4
	hostileLoggers  = 8
)

// attackRow is one kind of hostile caller's outcome over all hostile
// phases.
type attackRow struct {
	Name    string `json:"name"`
	Detail  string `json:"detail"`
	OK      uint64 `json:"ok"`
	Refused uint64 `json:"refused"`
	Errors  uint64 `json:"errors"`
	// Unfinished are calls still waiting for their answer when the phase
	// ended (cancelled).
	Unfinished uint64 `json:"unfinished"`
	FirstError string `json:"first_error,omitempty"`
	// Latency is that of the answered calls (loops) or of the first
	// answer on a stream (held streams).
	Latency latency `json:"latency"`
}

// hostileReport is the normal tenant's CheckFeature load measured alone
// and alongside the hostile callers, in alternating phases.
type hostileReport struct {
	Rounds       int         `json:"rounds"`
	PhaseSeconds float64     `json:"phase_s"`
	Callers      int         `json:"callers"`
	Accounts     []string    `json:"hostile_accounts"`
	Alone        resultRow   `json:"alone"`
	UnderAttack  resultRow   `json:"under_attack"`
	P50Ratio     float64     `json:"p50_ratio"`
	P99Ratio     float64     `json:"p99_ratio"`
	Throughput   float64     `json:"throughput_ratio"`
	Attacks      []attackRow `json:"attacks"`
}

// attack counts one kind of hostile caller's calls (safe for concurrent
// use).
type attack struct {
	key, name, detail string
	off               bool // not run (-hostile-attacks)
	ok, refused, errs atomic.Uint64
	unfinished        atomic.Uint64
	first             atomic.Pointer[error]
	expected          []codes.Code // besides OK and RESOURCE_EXHAUSTED
	mu                sync.Mutex
	latency           loadgen.Histogram
}

func (a *attack) note(err error, took time.Duration) {
	switch code := status.Code(err); {
	case err == nil:
		a.ok.Add(1)
		a.mu.Lock()
		a.latency.Record(took)
		a.mu.Unlock()
	case code == codes.ResourceExhausted || slices.Contains(a.expected, code):
		a.refused.Add(1)
	default:
		a.errs.Add(1)
		a.first.CompareAndSwap(nil, &err)
	}
}

func (a *attack) row() attackRow {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := attackRow{Name: a.name, Detail: a.detail, OK: a.ok.Load(), Refused: a.refused.Load(), Errors: a.errs.Load(),
		Unfinished: a.unfinished.Load(), Latency: latencyOf(&a.latency)}
	if e := a.first.Load(); e != nil {
		r.FirstError = (*e).Error()
	}
	return r
}

// hostileTargets are the accounts the hostile callers use: watched (held
// watches, decision log at 100 %), writer (written to all the time) and
// rules (expensive privacy rules, clicked at).
type hostileTargets struct {
	watched, writer, rules loadgen.Probe
}

// pickHostile chooses three accounts of distinct probes for the hostile
// callers (the last ones in the manifest with an agent session and a page it may visit; the rules account with room for three more privacy rules) and returns
// the manifest without their probes, for the normal tenant's workload.
func pickHostile(m *loadgen.Manifest) (hostileTargets, *loadgen.Manifest, error) {
	var picked []loadgen.Probe
	seen := map[string]bool{}
	rules := map[string]int{}
	for _, a := range m.Accounts {
		rules[a.ID] = a.PrivacyRules
	}
	for i := len(m.Probes) - 1; i >= 0 && len(picked) < 3; i-- {
		p := m.Probes[i]
		if seen[p.AccountID] || p.Support || pageOf(p) == "" {
			continue
		}
		// The rules account needs room for three more rules.
		if len(picked) == 2 && rules[p.AccountID]+3 > server.MaxPrivacyRules {
			continue
		}
		seen[p.AccountID] = true
		picked = append(picked, p)
	}
	if len(picked) < 3 {
		return hostileTargets{}, nil, errors.New("hostile: the manifest has fewer than 3 accounts with an agent session and a page it may visit")
	}
	rest := *m
	rest.Probes = slices.DeleteFunc(slices.Clone(m.Probes), func(p loadgen.Probe) bool { return seen[p.AccountID] })
	return hostileTargets{watched: picked[0], writer: picked[1], rules: picked[2]}, &rest, nil
}

// pageOf returns a page the probe's session may visit: an allowed URL of
// its account, or any page when the account has no allowlist; "" when it
// knows none.
func pageOf(p loadgen.Probe) string {
	switch {
	case len(p.AllowedURLs) > 0:
		return p.AllowedURLs[0]
	case !p.Restricted:
		return "https://www.example.com/hostile/"
	}
	return ""
}

// measureHostile runs the normal tenant's verified CheckFeature load at
// c.hoCallers callers alone and alongside the hostile callers, alternating
// every c.hoPhase for c.hoRounds rounds.
func measureHostile(ctx context.Context, addr string, m *loadgen.Manifest, abort context.CancelCauseFunc, c runConfig,
	cpu func() time.Duration, prog *progress) (*hostileReport, error) {
	targets, normal, err := pickHostile(m)
	if err != nil {
		return nil, err
	}
	w, err := loadgen.BuildWorkload(normal, 20_000, loadgen.DefaultMix, m.Config.Seed)
	if err != nil {
		return nil, err
	}
	// The normal tenant and the hostile callers have connections of their
	// own, as separate clients would.
	conns, err := dial(addr, c.conns)
	defer func() { conns.Close() }()
	if err != nil {
		return nil, err
	}
	hconns, err := dial(addr, 8)
	defer func() { hconns.Close() }()
	if err != nil {
		return nil, err
	}
	undo, err := prepareHostile(ctx, hconns[0], targets)
	defer undo()
	if err != nil {
		return nil, err
	}
	attacks := newAttacks()
	if c.hoAttacks != "" {
		on := strings.Split(c.hoAttacks, ",")
		for _, a := range attacks {
			a.off = !slices.Contains(on, a.key)
		}
	}
	check := loadgen.FailFast(abort, loadgen.CheckOp(conns, w))
	var alone, attacked loadgen.Result
	for r := range c.hoRounds {
		for k := range 2 {
			hostile := (k+r)%2 == 1
			name := "normal tenant alone"
			var stop func()
			if hostile {
				name = "normal tenant, hostile load"
				stop = startHostile(ctx, hconns, targets, attacks)
			}
			res := loadgen.RunPhase(ctx, loadgen.Phase{Name: name, Concurrency: c.hoCallers, Duration: c.hoPhase, Op: check,
				HonorShed: true, CPUClock: cpu, Progress: func(p loadgen.Progress) {
					prog.show(fmt.Sprintf("hostile round %d/%d: %-28s %5.1fs/%.1fs %8.0f calls/s errors %d", r+1, c.hoRounds, name,
						p.Elapsed.Seconds(), p.Duration.Seconds(), float64(p.Calls)/max(p.Elapsed.Seconds(), 1e-9), p.Errors))
				}})
			if stop != nil {
				stop()
				attacked.Merge(&res)
			} else {
				alone.Merge(&res)
			}
			if loadgen.RunError(ctx) != nil || ctx.Err() != nil {
				break
			}
		}
	}
	prog.done()
	rep := &hostileReport{Rounds: c.hoRounds, PhaseSeconds: c.hoPhase.Seconds(), Callers: c.hoCallers,
		Accounts: []string{targets.watched.AccountID, targets.writer.AccountID, targets.rules.AccountID},
		Alone:    resultRowOf(&alone), UnderAttack: resultRowOf(&attacked)}
	rep.Alone.Name, rep.UnderAttack.Name = "alone", "hostile load"
	rep.P50Ratio = ratio(rep.UnderAttack.Latency.P50, rep.Alone.Latency.P50)
	rep.P99Ratio = ratio(rep.UnderAttack.Latency.P99, rep.Alone.Latency.P99)
	rep.Throughput = ratio(rep.UnderAttack.CallsPerSec, rep.Alone.CallsPerSec)
	for _, a := range attacks {
		if !a.off {
			rep.Attacks = append(rep.Attacks, a.row())
		}
	}
	return rep, nil
}

func newAttacks() []*attack {
	return []*attack{
		{key: "meta", name: "meta streams", detail: fmt.Sprintf("%d unauthenticated health Watch and reflection streams held open (pool %d)", hostileMetaStreams, server.DefaultMaxMetaStreams)},
		{key: "watch", name: "policy watchers", detail: fmt.Sprintf("%d WatchSessionPolicy streams held on one account's session", hostileWatchers)},
		{key: "clicks", name: "expensive clicks", detail: fmt.Sprintf("%d callers: CLICK with %d ancestors x %d-byte attribute (%d bytes, the largest element a request may carry) against 3 rules [data-x*=\"a…(%d)…b\" i] *",
			hostileClickers, hostileAncestors, hostileAttrLen(), server.MaxElementBytes, hostileRuleLen), expected: []codes.Code{codes.DeadlineExceeded}},
		{key: "log", name: "decision log flood", detail: fmt.Sprintf("%d callers deciding on an account with decision_log_percent 100", hostileLoggers)},
		{key: "writes", name: "writes", detail: "UpdateLiveGuideSettings in a loop on another account than the watched one"},
	}
}

// hostileRuleSelector is a selector whose every match attempt scans each
// ancestor's data-x attribute for a 1000-character substring, ignoring
// case.
func hostileRuleSelector() string {
	return fmt.Sprintf(`[data-x*="a%sb" i] *`, strings.Repeat("a", hostileRuleLen-2))
}

// prepareHostile turns on the decision log of the watched account and
// gives the rules account three expensive privacy rules; undo puts them,
// and the writer account's settings, back as they were (also when the run
// is interrupted).
func prepareHostile(ctx context.Context, cc *grpc.ClientConn, t hostileTargets) (undo func(), err error) {
	admin := gatehousev1.NewAdminServiceClient(cc)
	var undos []func(context.Context)
	undo = func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, u := range slices.Backward(undos) {
			u(uctx)
		}
	}
	acct, err := admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: t.watched.AccountID})
	if err != nil {
		return undo, fmt.Errorf("hostile: %w", err)
	}
	orig := acct.GetAccount().GetDecisionLogPercent()
	setLog := func(ctx context.Context, pct uint32) error {
		_, err := admin.UpdateAccount(ctx, &gatehousev1.UpdateAccountRequest{
			Account:    &gatehousev1.Account{Id: t.watched.AccountID, DecisionLogPercent: pct},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"decision_log_percent"}},
		})
		return err
	}
	if err := setLog(ctx, 100); err != nil {
		return undo, fmt.Errorf("hostile: decision_log_percent 100 on %s: %w", t.watched.AccountID, err)
	}
	undos = append(undos, func(ctx context.Context) { _ = setLog(ctx, orig) })
	// The writes toggle the writer account's language_selector (a switch
	// no decision reads); put it back as it was.
	ls, err := admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: t.writer.AccountID})
	if err != nil {
		return undo, fmt.Errorf("hostile: %w", err)
	}
	origLS := ls.GetSettings().GetLanguageSelector()
	undos = append(undos, func(ctx context.Context) {
		_, _ = admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
			Settings:   &gatehousev1.LiveGuideSettings{AccountId: t.writer.AccountID, LanguageSelector: origLS},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"language_selector"}},
		})
	})
	run := fmt.Sprintf("%d", time.Now().Unix()%1_000_000)
	for i := range 3 {
		id := fmt.Sprintf("lt-hostile-%s-%d", run, i)
		_, err := admin.CreatePrivacyRule(ctx, &gatehousev1.CreatePrivacyRuleRequest{AccountId: t.rules.AccountID, Rule: &gatehousev1.PrivacyRule{
			Id: id, Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: hostileRuleSelector(), Description: "hostile load test",
		}})
		if err != nil {
			return undo, fmt.Errorf("hostile: privacy rule on %s: %w", t.rules.AccountID, err)
		}
		undos = append(undos, func(ctx context.Context) {
			_, _ = admin.DeletePrivacyRule(ctx, &gatehousev1.DeletePrivacyRuleRequest{AccountId: t.rules.AccountID, Id: id})
		})
	}
	return undo, nil
}

// hostileElement is the element of the expensive clicks: hostileAncestors
// ancestors, each carrying a data-x attribute of n bytes that nearly
// matches the rules' substring everywhere.
func hostileElement(n int) *gatehousev1.Element {
	val := strings.Repeat("A", max(n-1, 0)) + "c"
	anc := make([]*gatehousev1.ElementNode, hostileAncestors)
	for i := range anc {
		anc[i] = &gatehousev1.ElementNode{Tag: "div", Attributes: map[string]string{"data-x": val}}
	}
	return &gatehousev1.Element{Tag: "button", Attributes: map[string]string{"data-x": val}, Ancestors: anc}
}

// hostileAttrLen is the longest data-x value with which hostileElement
// stays within server.MaxElementBytes.
func hostileAttrLen() int {
	lo, hi := 1, 4096
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if proto.Size(hostileElement(mid)) <= server.MaxElementBytes {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// expensiveClick is a CLICK on the rules account's allowed page on the
// largest element a request may carry (hostileElement).
func expensiveClick(p loadgen.Probe) *gatehousev1.CheckFeatureRequest {
	return &gatehousev1.CheckFeatureRequest{
		SessionId: p.SessionID,
		Actor:     &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: p.RepresentativeID},
		Feature:   gatehousev1.Feature_FEATURE_CLICK,
		Url:       pageOf(p),
		Element:   hostileElement(hostileAttrLen()),
	}
}

// on is 1 for an attack that runs, 0 for one turned off.
func on(a *attack) int {
	if a.off {
		return 0
	}
	return 1
}

// startHostile starts every hostile caller on conns and returns a function
// that stops them and waits until they have.
func startHostile(ctx context.Context, conns loadgen.Conns, t hostileTargets, attacks []*attack) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	agent := &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: t.watched.RepresentativeID}
	// hold opens a stream with open, waits for its first answer and
	// holds it until the phase ends.
	hold := func(a *attack, i int, open func(ctx context.Context, cc *grpc.ClientConn) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			err := open(ctx, conns[i%len(conns)])
			if ctx.Err() != nil {
				a.unfinished.Add(1)
				return
			}
			a.note(err, time.Since(t0))
			if err == nil {
				<-ctx.Done()
			}
		}()
	}
	for i := range hostileMetaStreams * on(attacks[0]) {
		if i%2 == 0 {
			hold(attacks[0], i, func(ctx context.Context, cc *grpc.ClientConn) error {
				s, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{})
				if err == nil {
					_, err = s.Recv()
				}
				return err
			})
			continue
		}
		hold(attacks[0], i, func(ctx context.Context, cc *grpc.ClientConn) error {
			s, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
			if err == nil {
				err = s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
			}
			if err == nil {
				_, err = s.Recv()
			}
			return err
		})
	}
	watch := &gatehousev1.WatchSessionPolicyRequest{SessionId: t.watched.SessionID, Actor: agent}
	for i := range hostileWatchers * on(attacks[1]) {
		hold(attacks[1], i, func(ctx context.Context, cc *grpc.ClientConn) error {
			s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, gatehousev1.DecisionService_WatchSessionPolicy_FullMethodName, rawCalls...)
			if err == nil {
				err = s.SendMsg(watch)
			}
			if err == nil {
				err = s.CloseSend()
			}
			if err == nil {
				err = s.RecvMsg(&undecoded{})
			}
			return err
		})
	}
	loop := func(a *attack, i int, call func(ctx context.Context, cc *grpc.ClientConn) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				err := call(ctx, conns[i%len(conns)])
				if ctx.Err() != nil {
					a.unfinished.Add(1)
					return
				}
				a.note(err, time.Since(t0))
				if _, shed := loadgen.ShedOf(err); shed {
					// Hostile callers do not wait out RetryInfo, but
					// do not spin either.
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	click, err := proto.Marshal(expensiveClick(t.rules))
	if err != nil {
		panic(err) // a message built here
	}
	for i := range hostileClickers * on(attacks[2]) {
		loop(attacks[2], i, func(ctx context.Context, cc *grpc.ClientConn) error {
			return cc.Invoke(ctx, gatehousev1.DecisionService_CheckFeature_FullMethodName, preEncoded(click), &undecoded{}, rawCalls...)
		})
	}
	logged := &gatehousev1.CheckFeatureRequest{SessionId: t.watched.SessionID, Actor: agent,
		Feature: gatehousev1.Feature_FEATURE_NAVIGATE, Url: pageOf(t.watched)}
	for i := range hostileLoggers * on(attacks[3]) {
		loop(attacks[3], i, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := gatehousev1.NewDecisionServiceClient(cc).CheckFeature(ctx, logged)
			return err
		})
	}
	value := false
	for range on(attacks[4]) {
		loop(attacks[4], 0, func(ctx context.Context, cc *grpc.ClientConn) error {
			value = !value
			_, err := gatehousev1.NewAdminServiceClient(cc).UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
				Settings:   &gatehousev1.LiveGuideSettings{AccountId: t.writer.AccountID, LanguageSelector: value},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"language_selector"}},
			})
			return err
		})
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

func (h *hostileReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nhostile: the normal tenant's verified CheckFeature load (%d callers, accounts other than %s) alone and alongside hostile callers, %d rounds of %.1fs phases, alternating\n",
		h.Callers, strings.Join(h.Accounts, ", "), h.Rounds, h.PhaseSeconds)
	fmt.Fprintf(w, "%-14s %10s %12s %9s %9s %9s %9s %7s %7s\n", "normal tenant", "calls", "calls/s", "p50 µs", "p90 µs", "p99 µs", "max µs", "errors", "shed")
	for _, x := range []resultRow{h.Alone, h.UnderAttack} {
		fmt.Fprintf(w, "%-14s %10d %12.0f %9.0f %9.0f %9.0f %9.0f %7d %7d\n", x.Name, x.Calls, x.CallsPerSec, x.Latency.P50, x.Latency.P90,
			x.Latency.P99, x.Latency.Max, x.Errors, x.Shed)
	}
	fmt.Fprintf(w, "ratio hostile/alone: p50 %.2fx, p99 %.2fx, throughput %.2fx\n", h.P50Ratio, h.P99Ratio, h.Throughput)
	fmt.Fprintf(w, "hostile callers: ok; refused (RESOURCE_EXHAUSTED, or DEADLINE_EXCEEDED for the expensive clicks); other errors; unfinished at the phase's end; p50/p99 of the ok ones (streams: first answer)\n")
	fmt.Fprintf(w, "  %-18s %8s %8s %6s %10s %10s %10s\n", "", "ok", "refused", "errors", "unfinished", "p50 µs", "p99 µs")
	for _, a := range h.Attacks {
		fmt.Fprintf(w, "  %-18s %8d %8d %6d %10d %10.0f %10.0f  %s\n", a.Name, a.OK, a.Refused, a.Errors, a.Unfinished, a.Latency.P50, a.Latency.P99, a.Detail)
		if a.Errors > 0 {
			fmt.Fprintf(w, "  %-18s first error: %s\n", "", a.FirstError)
		}
	}
}

// evaluate adds the hostile targets: the normal tenant's p99 under the
// hostile load within 3x of its p99 alone, and no call of the normal
// tenant or of a hostile caller failed unexpectedly.
func (h *hostileReport) evaluate(add func(name, value string, met bool)) {
	add("hostile: normal tenant p99 with hostile load <= 3x alone",
		fmt.Sprintf("%.2fx (%.0f vs %.0f µs)", h.P99Ratio, h.UnderAttack.Latency.P99, h.Alone.Latency.P99), h.P99Ratio > 0 && h.P99Ratio <= 3)
}

// The hostile callers share the load tool's core with the normal tenant,
// whose latency is the one measured: they send pre-encoded requests and do
// not decode what they receive (a 680 KB policy per watch), so that the
// tool's own work for them takes as little as it can of that core. A
// profile of the tool showed decoding the watchers' policies as a quarter
// of its CPU.
type (
	preEncoded []byte
	undecoded  struct{ n int }
)

type hostileCodec struct{ proto encoding.CodecV2 }

func (c hostileCodec) Name() string { return "proto" }

func (c hostileCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(preEncoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c hostileCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if u, ok := v.(*undecoded); ok {
		u.n = data.Len()
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

var rawCalls = []grpc.CallOption{grpc.ForceCodecV2(hostileCodec{encoding.GetCodecV2("proto")})}
