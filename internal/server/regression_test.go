package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

var errInjected = errors.New("injected write failure")

// faultyStore fails the n-th Put or Delete of the next write transaction,
// after the earlier ones have succeeded: a transaction that dies half-way.
type faultyStore struct {
	store.Store
	mu     sync.Mutex
	failAt int
	hit    bool
}

func (f *faultyStore) arm(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAt, f.hit = n, false
}

// fired reports whether the armed fault was reached.
func (f *faultyStore) fired() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hit
}

func (f *faultyStore) Update(ctx context.Context, fn func(store.Tx) error) (uint64, error) {
	f.mu.Lock()
	n := f.failAt
	f.failAt = 0
	f.mu.Unlock()
	if n == 0 {
		return f.Store.Update(ctx, fn)
	}
	return f.Store.Update(ctx, func(tx store.Tx) error {
		return fn(&faultyTx{Tx: tx, f: f, failAt: n})
	})
}

type faultyTx struct {
	store.Tx
	f      *faultyStore
	ops    int
	failAt int
}

func (t *faultyTx) op() error {
	t.ops++
	if t.ops == t.failAt {
		t.f.mu.Lock()
		t.f.hit = true
		t.f.mu.Unlock()
		return errInjected
	}
	return nil
}

func (t *faultyTx) Put(key string, val []byte) error {
	if err := t.op(); err != nil {
		return err
	}
	return t.Tx.Put(key, val)
}

func (t *faultyTx) Delete(key string) error {
	if err := t.op(); err != nil {
		return err
	}
	return t.Tx.Delete(key)
}

// dump returns every key and value of the store.
func (e *testEnv) dump() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	err := e.store.View(context.Background(), func(tx store.ReadTx) error {
		return tx.Scan("", "", func(k string, v []byte, _ uint64) (bool, error) {
			out[k] = string(v)
			return true, nil
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestRegression_FailedWriteIsNeverReportedAsSuccess fails every write RPC
// in turn at each of its Puts and Deletes (the k-th one, after the earlier
// ones went through). Each time the caller gets an error, the store holds
// exactly what it held before (no half-applied write, no audit event for
// it), the revision does not move and decisions do not change. With k past
// the last operation the same call succeeds, which proves every operation
// was reached.
func TestRegression_FailedWriteIsNeverReportedAsSuccess(t *testing.T) {
	t.Parallel()
	var fs *faultyStore
	e := MustStart(t, "", func(o *Options) {
		fs = &faultyStore{Store: o.Store}
		o.Store = fs
	})
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	all := &gatehousev1.SupportFunctions{SendFiles: true, InviteExternalSpecialist: true}
	if _, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "help", Name: "Help", Functions: all, NotificationEmail: "help@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Id: "tier1", Name: "Tier 1", PortalId: "help"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.UpdateRepresentative(ctx, &gatehousev1.UpdateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "alice", TeamId: "tier1", Functions: all}, UpdateMask: mask("team_id", "functions")}); err != nil {
		t.Fatal(err)
	}
	live := e.MustStartSession("acme")
	click := &gatehousev1.CheckFeatureRequest{SessionId: live.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/"}
	var support string
	startSupport := func() error {
		r, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
			RepresentativeId: "alice", CustomerId: "cust-2", PortalId: "help-default"})
		if err == nil {
			support = r.GetSession().GetId()
		}
		return err
	}

	calls := []struct {
		name string
		call func(i int) error
	}{
		{"CreateAccount", func(i int) error {
			_, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: fmt.Sprintf("new-%d", i), DisplayName: "New"}})
			return err
		}},
		{"UpdateLiveGuideSettings", func(int) error {
			_, err := e.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
				Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true}, UpdateMask: mask("agent_click_restricted")})
			return err
		}},
		{"CreatePortal", func(i int) error {
			_, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: fmt.Sprintf("p-%d", i), Name: "P"}})
			return err
		}},
		{"StartSession", func(int) error { return startSupport() }},
		{"InviteExternalSpecialist", func(int) error {
			_, err := e.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: support, SpecialistId: "spec-1", DisplayName: "Spec"})
			return err
		}},
		{"EndSession (queues a notification)", func(int) error {
			_, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: support, CustomerRating: 5})
			return err
		}},
		{"GenerateCobrowseUrl", func(int) error {
			_, err := e.admin.GenerateCobrowseUrl(ctx, &gatehousev1.GenerateCobrowseUrlRequest{AccountId: "acme"})
			return err
		}},
		{"DeleteAccount", func(int) error {
			_, err := e.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: "acme"})
			return err
		}},
	}
	for _, c := range calls {
		for k := 1; ; k++ {
			if k > 200 {
				t.Fatalf("%s: still failing at operation %d", c.name, k)
			}
			before, rev := e.dump(), e.store.Revision()
			dec := e.MustCheck(click)
			fs.arm(k)
			err := c.call(k)
			if !fs.fired() {
				fs.arm(0)
				if err != nil {
					t.Fatalf("%s without a fault: %v", c.name, err)
				}
				if e.store.Revision() == rev {
					t.Fatalf("%s succeeded without committing", c.name)
				}
				t.Logf("%s: failed cleanly at each of its %d writes", c.name, k-1)
				break
			}
			if err == nil {
				t.Fatalf("%s: operation %d failed inside the transaction, and the caller was told it succeeded", c.name, k)
			}
			if code := statusCode(err); code != codes.Internal {
				t.Errorf("%s: a failed transaction answered %v, want INTERNAL", c.name, code)
			}
			if got := e.store.Revision(); got != rev {
				t.Fatalf("%s: failed at operation %d, and the revision moved %d -> %d", c.name, k, rev, got)
			}
			if after := e.dump(); !maps.Equal(before, after) {
				t.Fatalf("%s: failed at operation %d, and the store changed:\n%s", c.name, k, diffDump(before, after))
			}
			if got := e.MustCheck(click); !proto.Equal(got, dec) {
				t.Fatalf("%s: failed at operation %d, and the decision changed from %v to %v", c.name, k, dec, got)
			}
		}
	}
}

func diffDump(a, b map[string]string) string {
	var s string
	for k, v := range b {
		if w, ok := a[k]; !ok {
			s += fmt.Sprintf("  + %s\n", k)
		} else if w != v {
			s += fmt.Sprintf("  ~ %s\n", k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			s += fmt.Sprintf("  - %s\n", k)
		}
	}
	return s
}

// TestRegression_BatchAnswersEachItemLikeASingleCheck sends batches full of
// duplicate and conflicting checks (the same question twice; the same
// session asked by different actors, for different features, URLs, frames
// and elements; sessions of different accounts and kinds, ended ones) and
// requires every item's answer to be exactly the answer of that check alone.
func TestRegression_BatchAnswersEachItemLikeASingleCheck(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	for _, acct := range []string{"acme", "beta"} {
		e.MustCreateAccount(acct)
	}
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentInputRestricted: true, Chat: true, ClipboardCustomer: false}, "agent_input_restricted", "chat", "clipboard_customer")
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "beta", AgentClickRestricted: true, VideoAgent: true}, "agent_click_restricted", "video_agent")
	if _, err := e.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme", Entry: &gatehousev1.AllowlistEntry{Id: "docs", Pattern: "example.com/docs/"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreatePrivacyRule(ctx, &gatehousev1.CreatePrivacyRuleRequest{AccountId: "acme", Rule: &gatehousev1.PrivacyRule{
		Id: "buy", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: "form#pay button"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreatePrivacyRule(ctx, &gatehousev1.CreatePrivacyRuleRequest{AccountId: "acme", Rule: &gatehousev1.PrivacyRule{
		Id: "card", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_DATA_MASK, Selector: "input[name=card]"}}); err != nil {
		t.Fatal(err)
	}
	sessions := []string{e.MustStartSession("acme").GetId(), e.MustStartSession("beta").GetId()}
	ended := e.MustStartSession("acme").GetId()
	if _, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: ended}); err != nil {
		t.Fatal(err)
	}
	sessions = append(sessions, ended)

	actors := []*gatehousev1.Actor{agent("alice"), customer("cust-1"), agent("mallory"), {Role: gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST, Id: "spec"}}
	urls := []string{"https://example.com/docs/a", "https://example.com/other", "https://EXAMPLE.com./docs/%2e%2e/x", "javascript:alert(1)", "https://example.com.evil.net/docs/", "http://[::1"}
	elements := []*gatehousev1.Element{nil,
		{Tag: "button", Ancestors: []*gatehousev1.ElementNode{{Tag: "html"}, {Tag: "form", Id: "pay"}}},
		{Tag: "input", Attributes: map[string]string{"name": "card"}},
		{Tag: "button", Ancestors: []*gatehousev1.ElementNode{{Tag: "form", Id: "other"}}},
	}
	features := []gatehousev1.Feature{}
	for f := range gatehousev1.Feature_name {
		if f != 0 {
			features = append(features, gatehousev1.Feature(f))
		}
	}
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(n int) int { return rng.IntN(n) }
	var checks []*gatehousev1.CheckFeatureRequest
	for len(checks) < maxChecks-3 {
		c := &gatehousev1.CheckFeatureRequest{
			SessionId: sessions[pick(len(sessions))],
			Actor:     actors[pick(len(actors))],
			Feature:   features[pick(len(features))],
			Url:       urls[pick(len(urls))],
			Frame:     gatehousev1.Frame(pick(3)),
			Element:   elements[pick(len(elements))],
		}
		checks = append(checks, c)
		// Duplicates and near-duplicates that differ in one field.
		if pick(4) == 0 {
			checks = append(checks, c)
		}
		if pick(4) == 0 {
			d := proto.CloneOf(c)
			d.Actor = actors[pick(len(actors))]
			checks = append(checks, d)
		}
		if pick(4) == 0 {
			d := proto.CloneOf(c)
			d.Url = urls[pick(len(urls))]
			d.MinRevision = e.store.Revision()
			checks = append(checks, d)
		}
	}
	resp, err := e.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: checks})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != len(checks) {
		t.Fatalf("%d results for %d checks", len(resp.GetResults()), len(checks))
	}
	reasons := map[gatehousev1.Reason]int{}
	for i, c := range checks {
		single := e.MustCheck(c)
		if got := resp.GetResults()[i]; !proto.Equal(got, single) {
			t.Fatalf("check %d (%v):\n batch  %v\n single %v", i, c, got, single)
		}
		reasons[single.GetDecision().GetReason()]++
	}
	if len(reasons) < 8 {
		t.Errorf("the batch exercised only %d reasons: %v", len(reasons), reasons)
	}
}
