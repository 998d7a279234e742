package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
)

// hostileClick is a CLICK on the largest element a request may carry
// (MaxElementBytes encoded): 256 ancestors, each with two attributes as
// long as the limit allows, for the rules to read.
func hostileClick(t testing.TB, sessionID string) *gatehousev1.CheckFeatureRequest {
	el, _ := maxElement(t, 256, 2)
	return &gatehousev1.CheckFeatureRequest{SessionId: sessionID, Actor: agent("alice"),
		Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://shop.example.com/checkout", Element: el}
}

// TestPrivacyRules_HostileSelectorsStayCheap: privacy rules written to make
// matching expensive (case-insensitive substrings that almost match
// everywhere, over the deepest chain of the largest attributes a request
// may carry) cost about what benign rules cost on the same request. Both accounts are on one server and the
// request is the same, so transport and decoding cancel out.
func TestPrivacyRules_HostileSelectorsStayCheap(t *testing.T) {
	e := MustStart(t, "")
	ctx := ctxT(t)
	a := strings.Repeat("a", 1000)
	sessions := map[string]string{}
	for _, acct := range []string{"benign", "hostile"} {
		e.MustCreateAccount(acct)
		e.MustAllow(acct, "shop", "shop.example.com")
		for i := range 3 {
			sel := "button.pay"
			if acct == "hostile" {
				sel = fmt.Sprintf(`[data-x*="%sb" i] *`, a[:1000-i])
			}
			e.MustPrivacyRule(acct, &gatehousev1.PrivacyRule{Id: fmt.Sprintf("r%d", i),
				Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: sel})
		}
		sessions[acct] = e.MustStartSession(acct).GetId()
	}
	measure := func(acct string) (time.Duration, *gatehousev1.Decision) {
		req := hostileClick(t, sessions[acct])
		best := time.Duration(1<<63 - 1)
		var d *gatehousev1.Decision
		for range 5 {
			start := time.Now()
			resp, err := e.decide.CheckFeature(ctx, req)
			if err != nil {
				t.Fatalf("%s: %v", acct, err)
			}
			best = min(best, time.Since(start))
			d = resp.GetDecision()
		}
		return best, d
	}
	base, bd := measure("benign")
	hostile, hd := measure("hostile")
	t.Logf("benign %v (%v), hostile %v (%v)", base, bd, hostile, hd)
	if !bd.GetAllowed() {
		t.Errorf("benign rules denied the click: %v", bd)
	}
	// No hostile rule matches the element: it is allowed, or, were its
	// evaluation too costly, denied by the work limit; never anything else.
	if !hd.GetAllowed() && hd.GetRule() != policy.RulePrivacyWorkLimit {
		t.Errorf("hostile rules: %v; want allowed or the work limit's denial", hd)
	}
	if hostile > 5*base+20*time.Millisecond {
		t.Errorf("hostile rules took %v, benign ones %v on the same request", hostile, base)
	}
}

// TestPrivacyRules_DeadlineEndsEvaluation: a call whose deadline has
// passed or that was canceled is answered DEADLINE_EXCEEDED or CANCELED,
// never with a decision. The service is called in-process: over gRPC the
// client would report its own deadline whatever the server did.
func TestPrivacyRules_DeadlineEndsEvaluation(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	e.MustAllow("acme", "shop", "shop.example.com")
	e.MustPrivacyRule("acme", &gatehousev1.PrivacyRule{Id: "r", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: "button.pay"})
	sess := e.MustStartSession("acme").GetId()
	ds := &decisionService{s: e.srv}
	live := auth.NewContext(context.Background(), auth.Local)
	past, cancel := context.WithDeadline(live, time.Now().Add(-time.Second))
	defer cancel()
	canceled, cancel2 := context.WithCancel(live)
	cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{{"deadline", past, codes.DeadlineExceeded}, {"canceled", canceled, codes.Canceled}} {
		resp, err := ds.CheckFeature(tc.ctx, hostileClick(t, sess))
		if code := statusCode(err); code != tc.want {
			t.Errorf("CheckFeature, %s: %v (%v), want %v", tc.name, resp, err, tc.want)
		}
		batch, err := ds.CheckFeatures(tc.ctx, &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{
			{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}, hostileClick(t, sess)}})
		if code := statusCode(err); code != tc.want {
			t.Errorf("CheckFeatures, %s: %v (%v), want %v", tc.name, batch, err, tc.want)
		}
	}
	// The same calls with a live context are answered.
	if _, err := ds.CheckFeature(live, hostileClick(t, sess)); err != nil {
		t.Errorf("live context: %v", err)
	}
}

// TestAccountCollectionLimits: an account may hold MaxAllowlistEntries
// allowlist entries and MaxPrivacyRules privacy rules; the next create is
// refused with FAILED_PRECONDITION and RESOURCE_LIMIT, and deleting one
// makes room again.
func TestAccountCollectionLimits(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	e := MustStart(t, "", func(o *Options) { o.Metrics = m })
	// Every write to an account this large recompiles 10 000 patterns;
	// under the race detector on a busy machine that takes seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e.MustCreateAccount("acme")
	// Fill to one below each limit directly in the store: thousands of
	// creates through the API would only test the API's speed.
	_, err := e.store.Update(ctx, func(tx store.Tx) error {
		for i := range MaxAllowlistEntries - 1 {
			if err := store.PutAllowlistEntry(tx, "acme", &policy.AllowlistEntry{ID: fmt.Sprintf("e%05d", i), Pattern: fmt.Sprintf("h%d.example.com", i)}); err != nil {
				return err
			}
		}
		for i := range MaxPrivacyRules - 1 {
			if err := store.PutPrivacyRule(tx, "acme", &policy.PrivacyRule{ID: fmt.Sprintf("p%05d", i), Kind: policy.PrivacyRuleKindDataMask, Selector: "input.card"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	createEntry := func(id string) error {
		_, err := e.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme",
			Entry: &gatehousev1.AllowlistEntry{Id: id, Pattern: id + ".example.org"}})
		return err
	}
	createRule := func(id string) error {
		_, err := e.admin.CreatePrivacyRule(ctx, &gatehousev1.CreatePrivacyRuleRequest{AccountId: "acme",
			Rule: &gatehousev1.PrivacyRule{Id: id, Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_DATA_MASK, Selector: "input.cvv"}})
		return err
	}
	for i, c := range []struct {
		name   string
		create func(string) error
		del    func(id string) error
	}{
		{"allowlist", createEntry, func(id string) error {
			_, err := e.admin.DeleteAllowlistEntry(ctx, &gatehousev1.DeleteAllowlistEntryRequest{AccountId: "acme", Id: id})
			return err
		}},
		{"privacy", createRule, func(id string) error {
			_, err := e.admin.DeletePrivacyRule(ctx, &gatehousev1.DeletePrivacyRuleRequest{AccountId: "acme", Id: id})
			return err
		}},
	} {
		if err := c.create("nth"); err != nil {
			t.Fatalf("%s: the create reaching the limit: %v", c.name, err)
		}
		err := c.create("over")
		st := wantCode(t, err, codes.FailedPrecondition)
		if errorReason(st) != errs.ReasonLimit || !strings.Contains(st.Message(), "the most an account may have") {
			t.Errorf("%s: past the limit: %v (reason %q)", c.name, err, errorReason(st))
		}
		if got := metricValue(t, m, "gatehouse_limit_refusals_total", "limit=collection_size"); got != float64(i+1) {
			t.Errorf("%s: gatehouse_limit_refusals_total{limit=collection_size} = %v, want %d", c.name, got, i+1)
		}
		if err := c.del("nth"); err != nil {
			t.Fatal(err)
		}
		if err := c.create("again"); err != nil {
			t.Errorf("%s: after a delete: %v", c.name, err)
		}
	}
	// Updates at the limit are not creates.
	if _, err := e.admin.UpdatePrivacyRule(ctx, &gatehousev1.UpdatePrivacyRuleRequest{AccountId: "acme",
		Rule: &gatehousev1.PrivacyRule{Id: "again", Selector: "input.iban"}, UpdateMask: mask("selector")}); err != nil {
		t.Errorf("update at the limit: %v", err)
	}
}
