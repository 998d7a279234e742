package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// answersOnly is the staleness bound of tests about the answers, not
// about freshness (TestLocalSession_Staleness covers the bound): long
// enough that a test process starved of CPU for seconds on a loaded
// machine still decides locally.
var answersOnly = client.WithStaleness(time.Minute)

// openLocal opens a LocalSession for t.
func openLocal(t *testing.T, c *client.Client, id string, a client.Actor, opts ...client.SessionOption) *client.LocalSession {
	t.Helper()
	ls, err := c.Session(ctxT(t), id, a, opts...)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	t.Cleanup(ls.Close)
	return ls
}

// sameAsServer checks r locally and on the server at the local revision
// and requires the same answer, decided locally.
func sameAsServer(t *testing.T, ls *client.LocalSession, g *gatehouse, r client.CheckRequest) client.Decision {
	t.Helper()
	ctx := ctxT(t)
	before := ls.Stats().Local
	d, err := ls.Check(ctx, r)
	if err != nil {
		t.Fatalf("local Check: %v", err)
	}
	if ls.Stats().Local != before+1 {
		t.Fatalf("%v was not decided locally: %+v", r.Feature, ls.Stats())
	}
	resp, err := g.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: ls.ID(), Actor: &gatehousev1.Actor{Role: r.Actor.Role, Id: r.Actor.ID},
		Feature: r.Feature, Url: r.URL, Frame: r.Frame, Element: r.Element, MinRevision: d.Revision})
	if err != nil {
		t.Fatalf("CheckFeature: %v", err)
	}
	w := resp.GetDecision()
	if d.Allowed != w.GetAllowed() || d.Reason != w.GetReason() || d.Rule != w.GetRule() {
		t.Fatalf("%v: local %v/%v/%q at %d, server %v/%v/%q at %d", r.Feature, d.Allowed, d.Reason, d.Rule, d.Revision,
			w.GetAllowed(), w.GetReason(), w.GetRule(), resp.GetRevision())
	}
	return d
}

// TestLocalSession_AdminWritesLand: after each admin write, the local
// answer changes as soon as the watch message carrying the write's
// revision arrived, and equals the server's.
func TestLocalSession_AdminWritesLand(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, nil)
	lg, sup := localFixture(t, g)
	ctx := ctxT(t)
	c := dial(t, g.addr)
	ls := openLocal(t, c, lg, agent, answersOnly)
	rep := openLocal(t, c, sup, client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "bob"}, answersOnly)

	chat := client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CHAT}
	click := client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CLICK, URL: "https://shop.example.com/cart",
		Element: &gatehousev1.Element{Tag: "a", Classes: []string{"coupon"}}}
	nav := client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_NAVIGATE, URL: "https://blog.example.com/"}
	files := client.CheckRequest{Actor: client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "bob"}, Feature: gatehousev1.Feature_FEATURE_CHAT_RECEIPT_SOUND}
	for _, r := range []client.CheckRequest{chat, click} {
		if d := sameAsServer(t, ls, g, r); !d.Allowed {
			t.Fatalf("%v denied before the writes: %+v", r.Feature, d)
		}
	}
	if d := sameAsServer(t, ls, g, nav); d.Allowed {
		t.Fatalf("navigate off the allowlist allowed: %+v", d)
	}
	if d := sameAsServer(t, rep, g, files); !d.Allowed {
		t.Fatalf("function denied before the writes: %+v", d)
	}

	writes := []struct {
		name  string
		write func() uint64
		ls    *client.LocalSession
		r     client.CheckRequest
		want  gatehousev1.Reason
		rule  string
	}{
		{"chat off", func() uint64 {
			resp, err := g.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
				Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme"}, UpdateMask: mask("chat")})
			if err != nil {
				t.Fatal(err)
			}
			return resp.GetSettings().GetRevision()
		}, ls, chat, gatehousev1.Reason_REASON_FEATURE_DISABLED, "chat"},
		{"privacy rule added", func() uint64 {
			resp, err := g.admin.CreatePrivacyRule(ctx, &gatehousev1.CreatePrivacyRuleRequest{AccountId: "acme", Rule: &gatehousev1.PrivacyRule{
				Id: "coupon", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: "a.coupon", UrlPattern: "shop.example.com/cart"}})
			if err != nil {
				t.Fatal(err)
			}
			return resp.GetRule().GetRevision()
		}, ls, click, gatehousev1.Reason_REASON_ELEMENT_BLOCKED, "coupon"},
		{"allowlist entry added", func() uint64 {
			resp, err := g.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme",
				Entry: &gatehousev1.AllowlistEntry{Id: "blog", Pattern: "blog.example.com"}})
			if err != nil {
				t.Fatal(err)
			}
			return resp.GetEntry().GetRevision()
		}, ls, nav, gatehousev1.Reason_REASON_ALLOWED, "blog"},
		{"function off at the top portal", func() uint64 {
			fs := allOn()
			fs.RecordRepScreen, fs.ChatReceiptSound = false, false
			resp, err := g.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp", Functions: fs},
				UpdateMask: mask("functions")})
			if err != nil {
				t.Fatal(err)
			}
			return resp.GetPortal().GetRevision()
		}, rep, files, gatehousev1.Reason_REASON_PORTAL_FUNCTION_DISABLED, "corp"},
	}
	for _, w := range writes {
		rev := w.write()
		if err := w.ls.WaitRevision(ctx, rev); err != nil {
			t.Fatalf("%s: no watch message at revision %d: %v", w.name, rev, err)
		}
		d := sameAsServer(t, w.ls, g, w.r)
		if d.Reason != w.want || d.Rule != w.rule || d.Revision < rev {
			t.Fatalf("%s: local answer at %d is %v/%q, want %v/%q at ≥ %d", w.name, d.Revision, d.Reason, d.Rule, w.want, w.rule, rev)
		}
	}
	if st := ls.Stats(); st.Remote != 0 || st.Failed != 0 {
		t.Fatalf("checks left the process: %+v", st)
	}
}

// TestLocalSession_SessionEndStopsLocalAnswers: once the session ends
// every local answer is SESSION_ENDED, also long after the watch ended
// (no fallback to the server, no stale allow).
func TestLocalSession_SessionEndStopsLocalAnswers(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, nil)
	lg, _ := localFixture(t, g)
	ctx := ctxT(t)
	c := dial(t, g.addr)
	ls := openLocal(t, c, lg, agent, client.WithStaleness(600*time.Millisecond))
	chat := client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CHAT}
	if d := sameAsServer(t, ls, g, chat); !d.Allowed {
		t.Fatalf("chat denied: %+v", d)
	}
	if _, err := c.EndSession(ctx, lg, client.Ratings{}); err != nil {
		t.Fatal(err)
	}
	if err := ls.WaitClosed(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // past the staleness bound
	for _, r := range []client.CheckRequest{chat, {Actor: customer, Feature: gatehousev1.Feature_FEATURE_VIDEO},
		{Actor: agent, Feature: gatehousev1.Feature_FEATURE_NAVIGATE, URL: "https://shop.example.com/"},
		{Actor: agent, Feature: gatehousev1.Feature_FEATURE_NAVIGATE},                   // invalid: no URL
		{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CHAT, MinRevision: 1 << 40}, // a revision the watch will never see
		{Actor: client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "mallory"}, Feature: gatehousev1.Feature_FEATURE_CHAT}} {
		d, err := ls.Check(ctx, r)
		if err != nil || d.Allowed || d.Reason != gatehousev1.Reason_REASON_SESSION_ENDED {
			t.Fatalf("%+v after the end: %+v, %v", r, d, err)
		}
	}
	if st := ls.Stats(); st.Remote != 0 {
		t.Fatalf("checks after the end went to the server: %+v", st)
	}
}

// TestLocalSession_CloseStopsLocalAnswers: after Close, checks go to the
// server at once, within the staleness bound too; an ended session still
// answers SESSION_ENDED without the server.
func TestLocalSession_CloseStopsLocalAnswers(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, nil)
	lg, _ := localFixture(t, g)
	ctx := ctxT(t)
	c := dial(t, g.addr)
	ls, err := c.Session(ctx, lg, agent, client.WithStaleness(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	chat := client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CHAT}
	if d, err := ls.Check(ctx, chat); err != nil || !d.Allowed || ls.Stats().Local != 1 {
		t.Fatalf("before Close: %+v, %v, %+v", d, err, ls.Stats())
	}
	ls.Close()
	if ls.Fresh() {
		t.Fatal("fresh after Close")
	}
	if d, err := ls.Check(ctx, chat); err != nil || !d.Allowed || ls.Stats().Remote != 1 {
		t.Fatalf("after Close: %+v, %v, %+v; want the server's allow", d, err, ls.Stats())
	}
	if _, err := ls.CheckMany(ctx, []client.CheckRequest{chat, chat}); err != nil || ls.Stats().Remote != 3 || ls.Stats().Local != 1 {
		t.Fatalf("batch after Close: %v, %+v; want it sent to the server", err, ls.Stats())
	}

	ended := openLocal(t, c, lg, agent, client.WithStaleness(time.Hour))
	if _, err := c.EndSession(ctx, lg, client.Ratings{}); err != nil {
		t.Fatal(err)
	}
	if err := ended.WaitClosed(ctx); err != nil {
		t.Fatal(err)
	}
	ended.Close()
	if d, err := ended.Check(ctx, chat); err != nil || d.Reason != gatehousev1.Reason_REASON_SESSION_ENDED || ended.Stats().Remote != 0 {
		t.Fatalf("ended, after Close: %+v, %v, %+v", d, err, ended.Stats())
	}
}

// TestLocalSession_WatchEndedForGood: a revoked credential, a deleted
// account (and its sessions) or the watching specialist's removal ends
// the watch; local answers, single and batched, stop at once as denials
// with ErrPolicyUnavailable (and the cause), never allows.
func TestLocalSession_WatchEndedForGood(t *testing.T) {
	t.Parallel()
	spec := client.Actor{Role: gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST, ID: "spec-1"}
	for _, tc := range []struct {
		name    string
		support bool // watch the support session as its specialist
		end     func(t *testing.T, g *gatehouse, c *client.Client, tokenID, session string)
		cause   error
	}{
		{"credential revoked", false, func(t *testing.T, g *gatehouse, _ *client.Client, id, _ string) {
			if _, err := g.admin.RevokeCallerToken(ctxT(t), &gatehousev1.RevokeCallerTokenRequest{Id: id}); err != nil {
				t.Fatal(err)
			}
		}, client.ErrUnauthenticated},
		{"account deleted", false, func(t *testing.T, g *gatehouse, _ *client.Client, _, _ string) {
			if _, err := g.admin.DeleteAccount(ctxT(t), &gatehousev1.DeleteAccountRequest{Id: "acme"}); err != nil {
				t.Fatal(err)
			}
		}, client.ErrSessionNotFound},
		{"specialist removed", true, func(t *testing.T, _ *gatehouse, c *client.Client, _, session string) {
			if _, err := c.RemoveSpecialist(ctxT(t), session, "spec-1"); err != nil {
				t.Fatal(err)
			}
		}, client.ErrActorNotInSession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := mustStart(t, true, nil)
			lg, sup := localFixture(t, g)
			ctx := ctxT(t)
			tok, err := g.admin.CreateCallerToken(ctx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
				Name: "session server", Role: gatehousev1.CallerRole_CALLER_ROLE_DECIDER}})
			if err != nil {
				t.Fatal(err)
			}
			c := dial(t, g.addr, client.WithBearerToken(tok.GetBearer()))
			id, actor, r := lg, agent, client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CHAT}
			if tc.support {
				id, actor, r = sup, spec, client.CheckRequest{Actor: spec, Feature: gatehousev1.Feature_FEATURE_CHAT_RECEIPT_SOUND}
			}
			ls := openLocal(t, c, id, actor, answersOnly)
			if d, err := ls.Check(ctx, r); err != nil || !d.Allowed || ls.Stats().Local != 1 {
				t.Fatalf("before: %+v, %v, %+v; want a local allow", d, err, ls.Stats())
			}
			tc.end(t, g, c, tok.GetToken().GetId(), id)
			if err := ls.WaitClosed(ctx); err != nil {
				t.Fatal(err)
			}
			d, err := ls.Check(ctx, r)
			if d.Allowed || d.Rule != client.RulePolicyRevoked || !errors.Is(err, client.ErrPolicyUnavailable) || !errors.Is(err, tc.cause) {
				t.Fatalf("after: %+v, %v; want a %s denial with %v", d, err, client.RulePolicyRevoked, tc.cause)
			}
			ds, err := ls.CheckMany(ctx, []client.CheckRequest{r, r})
			if len(ds) != 2 || ds[0].Allowed || ds[1].Rule != client.RulePolicyRevoked || !errors.Is(err, tc.cause) {
				t.Fatalf("batch after: %+v, %v; want %s denials with %v", ds, err, client.RulePolicyRevoked, tc.cause)
			}
			if ls.Policy() != nil {
				t.Fatal("the policy is still held")
			}
			if st := ls.Stats(); st.Remote != 0 || st.Failed != 3 {
				t.Fatalf("stats %+v: want no call to the server, 3 denials without a policy", st)
			}
		})
	}
}

// stall holds the messages of the client's streams while on, as a
// network that stopped delivering would.
type stall struct {
	on      atomic.Bool
	mu      sync.Mutex
	resumed chan struct{}
}

func newStall() *stall { return &stall{resumed: make(chan struct{})} }

func (s *stall) set(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.on.Swap(on) && !on {
		close(s.resumed)
		s.resumed = make(chan struct{})
	}
}

func (s *stall) interceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	return &stalledStream{ClientStream: cs, s: s}, nil
}

type stalledStream struct {
	grpc.ClientStream
	s *stall
}

func (ss *stalledStream) RecvMsg(m any) error {
	for ss.s.on.Load() {
		ss.s.mu.Lock()
		ch := ss.s.resumed
		ss.s.mu.Unlock()
		if !ss.s.on.Load() {
			break
		}
		select {
		case <-ch:
		case <-ss.Context().Done():
			return ss.Context().Err()
		}
	}
	return ss.ClientStream.RecvMsg(m)
}

// TestLocalSession_Staleness: heartbeats keep an unchanged policy fresh;
// a watch that stops delivering makes checks go to the server after the
// staleness bound; when the server cannot be reached either, the answer
// is a denial with ErrPolicyUnavailable.
func TestLocalSession_Staleness(t *testing.T) {
	t.Parallel()
	g, err := startGatehouse(t.TempDir(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(g.stop) }
	t.Cleanup(stop)
	lg, _ := localFixture(t, g)
	ctx := ctxT(t)
	st := newStall()
	c := dial(t, g.addr, client.WithDialOptions(grpc.WithStreamInterceptor(st.interceptor)), client.WithMaxAttempts(1))
	const bound = 700 * time.Millisecond
	ls := openLocal(t, c, lg, agent, client.WithStaleness(bound))
	chat := client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CHAT}

	time.Sleep(3 * bound) // no change: only heartbeats arrive
	if !ls.Fresh() {
		t.Fatal("an unchanged policy went stale: no heartbeats")
	}
	sameAsServer(t, ls, g, chat)

	st.set(true)
	time.Sleep(2 * bound)
	if ls.Fresh() {
		t.Fatal("still fresh after the watch stopped delivering")
	}
	before := ls.Stats()
	d, err := ls.Check(ctx, chat)
	if err != nil || !d.Allowed || ls.Stats().Remote != before.Remote+1 {
		t.Fatalf("stale check: %+v, %v, %+v; want an allow from the server", d, err, ls.Stats())
	}

	st.set(false)
	deadline := time.Now().Add(5 * time.Second)
	for !ls.Fresh() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	sameAsServer(t, ls, g, chat)

	stop()
	time.Sleep(2 * bound)
	d, err = ls.Check(ctx, chat)
	if d.Allowed || d.Rule != client.RulePolicyUnavailable || !errors.Is(err, client.ErrPolicyUnavailable) {
		t.Fatalf("with the server gone: %+v, %v; want a %s denial", d, err, client.RulePolicyUnavailable)
	}
}

// TestWatchSessionPolicy_HeartbeatBounds: heartbeat intervals outside the
// documented range are refused with a field violation.
func TestWatchSessionPolicy_HeartbeatBounds(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, nil)
	lg, _ := localFixture(t, g)
	for _, ms := range []uint32{1, 499, 3600001} {
		stream, err := g.decide.WatchSessionPolicy(ctxT(t), &gatehousev1.WatchSessionPolicyRequest{SessionId: lg,
			Actor: &gatehousev1.Actor{Role: agent.Role, Id: agent.ID}, HeartbeatIntervalMs: ms})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("heartbeat_interval_ms %d: %v, want INVALID_ARGUMENT", ms, err)
		}
	}
}

// TestWatchSessionPolicy_Heartbeats: a watch that asked for heartbeats
// gets policy-less messages with the current revision while nothing
// changes; one that did not ask gets nothing after the first policy.
func TestWatchSessionPolicy_Heartbeats(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, nil)
	lg, _ := localFixture(t, g)
	open := func(ctx context.Context, ms uint32) gatehousev1.DecisionService_WatchSessionPolicyClient {
		stream, err := g.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: lg,
			Actor: &gatehousev1.Actor{Role: agent.Role, Id: agent.ID}, HeartbeatIntervalMs: ms})
		if err != nil {
			t.Fatal(err)
		}
		m, err := stream.Recv()
		if err != nil || m.GetPolicy() == nil {
			t.Fatalf("first message: %v, %v", m, err)
		}
		return stream
	}
	ctx := ctxT(t)
	beating := open(ctx, 500)
	first := time.Now()
	for i := range 2 {
		m, err := beating.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetPolicy() != nil || m.GetHeartbeatRevision() == 0 {
			t.Fatalf("message %d: %v, want a heartbeat", i, m)
		}
	}
	if d := time.Since(first); d < 900*time.Millisecond {
		t.Fatalf("two heartbeats of 500 ms in %v", d)
	}
	quietCtx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	quiet := open(quietCtx, 0)
	if m, err := quiet.Recv(); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a watch without heartbeats got %v, %v", m, err)
	}
}

// TestLocalSession_DamagedPortalChains: a portal chain that loops, names a
// missing parent or is deeper than the limit (data the API refuses to
// write, written to the store directly) disables every function at the
// session's portal, locally as on the server.
func TestLocalSession_DamagedPortalChains(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, nil)
	_, sup := localFixture(t, g)
	ctx := ctxT(t)
	c := dial(t, g.addr)
	bob := client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "bob"}
	ls := openLocal(t, c, sup, bob)
	setParent := func(parent string, extra ...policy.Portal) {
		t.Helper()
		rev, err := g.store.Update(ctx, func(tx store.Tx) error {
			for i := range extra {
				if err := store.PutPortal(tx, "acme", &extra[i]); err != nil {
					return err
				}
			}
			p, err := store.GetPortal(tx, "acme", "corp")
			if err != nil {
				return err
			}
			p.ParentID = parent
			return store.PutPortal(tx, "acme", &p)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := ls.WaitRevision(ctx, rev); err != nil {
			t.Fatal(err)
		}
	}
	var deep []policy.Portal
	for i := range policy.MaxChainDepth + 5 {
		p := policy.Portal{ID: fmt.Sprintf("deep-%02d", i), Name: "deep", Functions: 1<<policy.NumFunctions - 1}
		if i+1 < policy.MaxChainDepth+5 {
			p.ParentID = fmt.Sprintf("deep-%02d", i+1)
		}
		deep = append(deep, p)
	}
	for _, tc := range []struct {
		name   string
		parent string
		extra  []policy.Portal
	}{
		{"loop", "corp-eu", nil},
		{"missing parent", "gone", nil},
		{"too deep", "deep-00", deep},
		{"repaired", "", nil},
	} {
		setParent(tc.parent, tc.extra...)
		for fn := 101; fn < 113; fn++ {
			d := sameAsServer(t, ls, g, client.CheckRequest{Actor: bob, Feature: gatehousev1.Feature(fn)})
			broken := tc.name != "repaired"
			if broken && (d.Allowed || d.Reason != gatehousev1.Reason_REASON_PORTAL_FUNCTION_DISABLED || d.Rule != "corp-eu") {
				t.Fatalf("%s: %v is %+v; want disabled by corp-eu", tc.name, gatehousev1.Feature(fn), d)
			}
		}
	}
}
