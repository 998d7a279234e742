package client_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var diffQueries = flag.Int("diff-queries", 20000, "queries of TestLocalSession_Differential")

// localFixture adds to the fixture an allowlist, privacy rules of both
// kinds (page-wide, on a host, on a path, with selectors of every shape),
// mixed Live Guide switches, a portal chain with functions off at each
// level and a representative with some off; it starts a Live Guide and a
// support session (with a specialist) and returns their ids.
func localFixture(t testing.TB, g *gatehouse) (lg, support string) {
	t.Helper()
	ctx := ctxT(t)
	mustFixture(t, g)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for id, p := range map[string]string{"shop": "shop.example.com", "wild": "*.example.org", "docs": "docs.example.net/help",
		"ip": "192.0.2.10", "port": "app.example.io:8443"} {
		must(g.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme",
			Entry: &gatehousev1.AllowlistEntry{Id: id, Pattern: p}}))
	}
	block, maskK := gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_DATA_MASK
	for _, r := range []*gatehousev1.PrivacyRule{
		{Id: "pay", Kind: block, Selector: "form.checkout button.pay"},
		{Id: "del", Kind: block, Selector: "#delete-account", UrlPattern: "shop.example.com/account"},
		{Id: "buy", Kind: block, Selector: "button[data-action=buy]", UrlPattern: "*.example.org"},
		{Id: "cvv", Kind: maskK, Selector: "input[name=cvv], #card-number", UrlPattern: "shop.example.com/checkout"},
		{Id: "ssn", Kind: maskK, Selector: "div.private > input"},
		{Id: "any", Kind: maskK, Selector: "*", UrlPattern: "docs.example.net/help/secret"},
		{Id: "zz-nav", Kind: block, Selector: "nav a.admin", UrlPattern: "192.0.2.10"},
	} {
		must(g.admin.CreatePrivacyRule(ctx, &gatehousev1.CreatePrivacyRuleRequest{AccountId: "acme", Rule: r}))
	}
	must(g.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", AgentInputRestricted: true, ClipboardAgent: false, ClipboardCustomer: true,
			VideoAgent: true, VoiceChat: true, DocumentShareCustomer: true, Chat: true},
		UpdateMask: mask("agent_input_restricted", "clipboard_agent", "clipboard_customer", "video_agent", "voice_chat", "document_share_customer", "chat")}))
	fs := allOn()
	fs.RecordRepScreen = false
	must(g.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp", Functions: fs}, UpdateMask: mask("functions")}))
	fs = allOn()
	fs.SendFiles, fs.RecordRepScreen = false, false
	must(g.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp-eu", Functions: fs}, UpdateMask: mask("functions")}))
	fs = allOn()
	fs.Annotations, fs.RunAsService = false, false
	must(g.admin.UpdateRepresentative(ctx, &gatehousev1.UpdateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "bob", Functions: fs}, UpdateMask: mask("functions")}))
	var opts []client.Option
	if g.bearer != "" {
		opts = append(opts, client.WithBearerToken(g.bearer))
	}
	c := dial(t, g.addr, opts...)
	s1, err := c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE,
		RepresentativeID: "alice", CustomerID: "cust-1"})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.StartSession(ctx, client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
		RepresentativeID: "bob", CustomerID: "cust-2", PortalID: "corp-eu"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.InviteSpecialist(ctx, s2.GetId(), "spec-1", "Spec"); err != nil {
		t.Fatal(err)
	}
	return s1.GetId(), s2.GetId()
}

// Query material: pages on and off the allowlist and hostile spellings of
// them, and elements that privacy rules do and do not cover.
var (
	diffURLs = []string{
		"https://shop.example.com/", "https://shop.example.com/checkout", "https://shop.example.com/checkout/step2?x=1",
		"https://shop.example.com/account", "http://SHOP.Example.COM./account#x", "https://a.b.example.org/p", "https://example.org/",
		"https://docs.example.net/help", "https://docs.example.net/help/secret/1", "https://docs.example.net/helpdesk", "https://docs.example.net/",
		"http://192.0.2.10/admin", "https://app.example.io:8443/", "https://app.example.io/", "https://[::1]/",
		"https://shop.example.com@evil.com/", "https://evil.com/shop.example.com", "https://shop.example.com.evil.com/",
		"https://evil.com/?u=https://shop.example.com", "javascript:alert(1)", "data:text/html,hi", "file:///etc/passwd",
		"ftp://shop.example.com/", "https://", "not a url", "https://xn--shp-7na.example.com/", "https://shop.example.com%2eevil.com/",
		"https://shop.example.com:443/checkout", "HTTPS://shop.example.com/Checkout", "https://shop.example.com\\@evil.com/",
		"https://0xc0.0.2.10/", "https://3221225994/", "https://shop.example.com/%2e%2e/checkout", " https://shop.example.com/ ",
		"https://sub.shop.example.com/", "https://example.org.evil.net/", "",
	}
	diffElements = []*gatehousev1.Element{
		nil,
		{Tag: "button", Classes: []string{"pay"}, Ancestors: []*gatehousev1.ElementNode{{Tag: "html"}, {Tag: "form", Classes: []string{"checkout"}}}},
		{Tag: "button", Classes: []string{"pay"}},
		{Tag: "button", Id: "delete-account"},
		{Tag: "button", Attributes: map[string]string{"data-action": "buy"}},
		{Tag: "button", Attributes: map[string]string{"data-action": "buyer"}},
		{Tag: "input", Attributes: map[string]string{"name": "cvv"}},
		{Tag: "input", Id: "card-number"},
		{Tag: "input", Ancestors: []*gatehousev1.ElementNode{{Tag: "div", Classes: []string{"private"}}}},
		{Tag: "input", Ancestors: []*gatehousev1.ElementNode{{Tag: "div", Classes: []string{"private"}}, {Tag: "span"}}},
		{Tag: "a", Classes: []string{"admin"}, Ancestors: []*gatehousev1.ElementNode{{Tag: "body"}, {Tag: "nav"}, {Tag: "ul"}, {Tag: "li"}}},
		{Tag: "p"},
		{Tag: "INPUT", Attributes: map[string]string{"NAME": "cvv"}},
		{Tag: "div", Classes: []string{"a", "b", "c"}, Attributes: map[string]string{"x": "y"}},
	}
)

// randomCheck draws one query for session id: every feature (and an
// unknown one), every role with participants and strangers, every frame.
func randomCheck(r *rand.Rand, id string, support bool) client.CheckRequest {
	var f gatehousev1.Feature
	switch n := r.IntN(100); {
	case n < 49:
		f = gatehousev1.Feature(n%12 + 1)
	case n < 98:
		f = gatehousev1.Feature(101 + n%12)
	default:
		f = gatehousev1.Feature(r.IntN(300))
	}
	actors := []client.Actor{agent, customer, {Role: gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST, ID: "spec-1"}, {Role: gatehousev1.Role_ROLE_AGENT, ID: "mallory"}}
	if support {
		actors = []client.Actor{{Role: gatehousev1.Role_ROLE_AGENT, ID: "bob"}, {Role: gatehousev1.Role_ROLE_CUSTOMER, ID: "cust-2"},
			{Role: gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST, ID: "spec-1"}, agent}
	}
	weights := []int{50, 40, 8, 2}
	a, w := actors[0], r.IntN(100)
	for i, x := range weights {
		if w < x {
			a = actors[i]
			break
		}
		w -= x
	}
	return client.CheckRequest{SessionID: id, Actor: a, Feature: f, URL: diffURLs[r.IntN(len(diffURLs))],
		Frame: gatehousev1.Frame(r.IntN(3)), Element: diffElements[r.IntN(len(diffElements))]}
}

// TestLocalSession_Differential decides generated queries locally and
// through CheckFeatures of a real server over a bbolt store at the same
// revision, and requires the same allowed, reason and rule for each.
func TestLocalSession_Differential(t *testing.T) {
	t.Parallel()
	g := mustStart(t, false, nil)
	lg, sup := localFixture(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := dial(t, g.addr)
	sessions := map[string]*client.LocalSession{}
	for id, a := range map[string]client.Actor{lg: agent, sup: {Role: gatehousev1.Role_ROLE_AGENT, ID: "bob"}} {
		ls, err := c.Session(ctx, id, a, answersOnly)
		if err != nil {
			t.Fatalf("Session(%s): %v", id, err)
		}
		t.Cleanup(ls.Close)
		sessions[id] = ls
	}
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	n := *diffQueries
	if testing.Short() {
		n = 2000
	}
	start := time.Now()
	const batch = 1000
	seen := map[string]int{} // reason/rule pairs covered
	var diffs, batches int
	var local uint64 // single checks decided locally
	for done := 0; done < n; done += batch {
		reqs := make([]client.CheckRequest, 0, batch)
		wire := &gatehousev1.CheckFeaturesRequest{}
		for range min(batch, n-done) {
			id, support := lg, false
			if r.IntN(3) == 0 {
				id, support = sup, true
			}
			q := randomCheck(r, id, support)
			reqs = append(reqs, q)
			wire.Checks = append(wire.Checks, &gatehousev1.CheckFeatureRequest{SessionId: q.SessionID, Actor: &gatehousev1.Actor{Role: q.Actor.Role, Id: q.Actor.ID},
				Feature: q.Feature, Url: q.URL, Frame: q.Frame, Element: q.Element})
		}
		results, invalid := checkAll(t, ctx, g, wire)
		wasLocal := make([]bool, len(reqs))
		for i, q := range reqs {
			ls := sessions[q.SessionID]
			before := ls.Stats().Local
			d, err := ls.Check(ctx, q)
			wasLocal[i] = ls.Stats().Local == before+1
			if wasLocal[i] {
				local++
			}
			if invalid[i] {
				if !errors.Is(err, client.ErrInvalidArgument) {
					t.Errorf("%+v: local answer %v, %v; remote INVALID_ARGUMENT", q, d, err)
					diffs++
				}
				seen["invalid"]++
				continue
			}
			if err != nil {
				t.Errorf("%+v: local error %v", q, err)
				diffs++
				continue
			}
			want := results[i]
			w := want.GetDecision()
			if d.Allowed != w.GetAllowed() || d.Reason != w.GetReason() || d.Rule != w.GetRule() || d.Message != w.GetMessage() {
				diffs++
				if diffs < 20 {
					t.Errorf("%s %v %q frame %v element %v actor %v: local %v/%v/%q, remote %v/%v/%q", q.SessionID, q.Feature, q.URL, q.Frame, q.Element, q.Actor,
						d.Allowed, d.Reason, d.Rule, w.GetAllowed(), w.GetReason(), w.GetRule())
				}
			}
			if d.Revision != want.GetRevision() {
				t.Fatalf("local revision %d, remote %d: not the same revision", d.Revision, want.GetRevision())
			}
			seen[w.GetReason().String()+"/"+w.GetRule()]++
		}
		// The same queries as batches, per session: those each decided
		// locally above, which CheckMany decides locally as one batch, and
		// all the valid ones (strangers too), which it sends to the server.
		for id, ls := range sessions {
			var locals, valid []client.CheckRequest
			for i, q := range reqs {
				if q.SessionID != id || invalid[i] {
					continue
				}
				valid = append(valid, q)
				if wasLocal[i] {
					locals = append(locals, q)
				}
			}
			before := ls.Stats()
			diffs += sameBatch(t, ctx, g, ls, locals)
			after := ls.Stats()
			if after.Local != before.Local+uint64(len(locals)) || after.Remote != before.Remote {
				t.Fatalf("a batch of %d local checks: stats %+v then %+v", len(locals), before, after)
			}
			diffs += sameBatch(t, ctx, g, ls, valid)
			batches++
		}
	}
	elapsed := time.Since(start)
	for _, ls := range sessions {
		if st := ls.Stats(); st.Failed != 0 {
			t.Errorf("%d checks failed", st.Failed)
		}
	}
	t.Logf("%d queries in %v: %d decided locally, %d sent to the server (invalid or non-participant); %d distinct outcomes; also compared as %d batches",
		n, elapsed, local, uint64(n)-local, len(seen), 2*batches)
	if diffs > 0 {
		t.Fatalf("%d decisions differ", diffs)
	}
	if local < uint64(n)*3/4 {
		t.Errorf("only %d of %d decided locally", local, n)
	}
	// The material must reach every reason the engine can give.
	for _, reason := range []gatehousev1.Reason{2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 1} {
		found := false
		for k := range seen {
			if len(k) >= len(reason.String()) && k[:len(reason.String())] == reason.String() {
				found = true
			}
		}
		if !found && reason != gatehousev1.Reason_REASON_SESSION_ENDED && n >= 2000 {
			t.Errorf("no query reached %v", reason)
		}
	}
}

// sameBatch decides rs with ls.CheckMany and with CheckFeatures and
// returns how many decisions differ.
func sameBatch(t *testing.T, ctx context.Context, g *gatehouse, ls *client.LocalSession, rs []client.CheckRequest) int {
	t.Helper()
	if len(rs) == 0 {
		return 0
	}
	got, err := ls.CheckMany(ctx, rs)
	if err != nil {
		t.Fatalf("CheckMany of %d: %v", len(rs), err)
	}
	wire := &gatehousev1.CheckFeaturesRequest{}
	for _, q := range rs {
		wire.Checks = append(wire.Checks, &gatehousev1.CheckFeatureRequest{SessionId: q.SessionID, Actor: &gatehousev1.Actor{Role: q.Actor.Role, Id: q.Actor.ID},
			Feature: q.Feature, Url: q.URL, Frame: q.Frame, Element: q.Element})
	}
	resp, err := g.decide.CheckFeatures(ctx, wire)
	if err != nil {
		t.Fatalf("CheckFeatures of %d: %v", len(rs), err)
	}
	diffs := 0
	for i, r := range resp.GetResults() {
		w, d := r.GetDecision(), got[i]
		if d.Allowed != w.GetAllowed() || d.Reason != w.GetReason() || d.Rule != w.GetRule() || d.Message != w.GetMessage() || d.Revision != r.GetRevision() {
			diffs++
			if diffs < 5 {
				t.Errorf("batch check %d %+v: CheckMany %+v, CheckFeatures %v at %d", i, rs[i], d, w, r.GetRevision())
			}
		}
	}
	return diffs
}

// checkAll answers the checks with CheckFeatures, leaving out (and
// marking) the ones the server refuses as invalid, which fail a whole
// batch.
func checkAll(t *testing.T, ctx context.Context, g *gatehouse, req *gatehousev1.CheckFeaturesRequest) ([]*gatehousev1.CheckFeatureResponse, map[int]bool) {
	t.Helper()
	invalid := map[int]bool{}
	for {
		var sent []*gatehousev1.CheckFeatureRequest
		var idx []int
		for i, c := range req.GetChecks() {
			if !invalid[i] {
				sent, idx = append(sent, c), append(idx, i)
			}
		}
		resp, err := g.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: sent})
		if err == nil {
			out := make([]*gatehousev1.CheckFeatureResponse, len(req.GetChecks()))
			for j, r := range resp.GetResults() {
				out[idx[j]] = r
			}
			return out, invalid
		}
		st := status.Convert(err)
		found := false
		for _, d := range st.Details() {
			br, ok := d.(*errdetails.BadRequest)
			if !ok {
				continue
			}
			for _, v := range br.GetFieldViolations() {
				var j int
				if _, err := fmt.Sscanf(v.GetField(), "checks[%d]", &j); err == nil && j < len(idx) {
					invalid[idx[j]], found = true, true
				}
			}
		}
		if st.Code() != codes.InvalidArgument || !found {
			t.Fatalf("CheckFeatures: %v", err)
		}
	}
}
