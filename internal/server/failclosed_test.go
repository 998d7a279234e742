package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/snapshot"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/grpc/codes"
)

// rawPut writes val at key directly in the store, bypassing every handler,
// the way a damaged or foreign record would appear. It returns the commit's
// revision.
func (e *testEnv) rawPut(key string, val []byte) uint64 {
	e.t.Helper()
	rev, err := e.store.Update(context.Background(), func(tx store.Tx) error { return tx.Put(key, val) })
	if err != nil {
		e.t.Fatalf("raw put %s: %v", key, err)
	}
	return rev
}

// TestFailClosed_UndecodableRecordKeepsLastGoodSnapshot corrupts one
// stored record of an account whose agent may not click. The rebuild that
// follows fails, and decisions keep coming from the last good snapshot:
// still denied, at the old revision; a decision that asks for a revision
// the snapshot cannot reach times out instead of answering from older
// data. Writes stay durable. Once the record is repaired, the follower
// catches up by itself.
func TestFailClosed_UndecodableRecordKeepsLastGoodSnapshot(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		key  func(sess string) string
	}{
		{"settings", func(string) string { return "t/acme/settings" }},
		{"account", func(string) string { return "acct/acme" }},
		{"representative", func(string) string { return "t/acme/rep/alice" }},
		{"allowlist entry", func(string) string { return "t/acme/allow/new" }},
		{"privacy rule", func(string) string { return "t/acme/privacy/new" }},
		{"portal", func(string) string { return "t/acme/portal/new" }},
		{"session", func(s string) string { return "t/acme/session/" + s }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := MustStart(t, "", func(o *Options) { o.MaxRevisionWait = 200 * time.Millisecond })
			e.MustCreateAccount("acme")
			sess := e.MustStartSession("acme")
			good := e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true}, "agent_click_restricted")
			click := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/"}
			wantDenied := func(when string) *gatehousev1.CheckFeatureResponse {
				t.Helper()
				d := e.MustCheck(click)
				if d.GetDecision().GetAllowed() || d.GetDecision().GetReason() != gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED {
					t.Fatalf("%s: decision %v at revision %d, want AGENT_CLICK_RESTRICTED", when, d.GetDecision(), d.GetRevision())
				}
				return d
			}
			wantDenied("before")

			bad := e.rawPut(tc.key(sess.GetId()), []byte(`{"agent_click_restricted": fals`))
			time.Sleep(50 * time.Millisecond) // let the follower try
			d := wantDenied("after corruption")
			if d.GetRevision() != good.GetRevision() {
				t.Fatalf("answered at revision %d; the last good snapshot is %d and %d is corrupt", d.GetRevision(), good.GetRevision(), bad)
			}
			res, err := e.decide.CheckFeatures(ctxT(t), &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{click, click}})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.GetResults() {
				if r.GetDecision().GetAllowed() {
					t.Fatalf("CheckFeatures allowed after corruption: %v", r)
				}
			}

			// A write elsewhere is committed and acknowledged (after the
			// bounded wait for the snapshot), and durable.
			start := time.Now()
			other, err := e.admin.CreateAccount(ctxT(t), &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "other", DisplayName: "Other"}})
			if err != nil {
				t.Fatalf("write while the snapshot is stuck: %v", err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("write took %v; its wait for the snapshot must be bounded", took)
			}
			if _, err := e.admin.GetAccount(ctxT(t), &gatehousev1.GetAccountRequest{Id: "other"}); err != nil {
				t.Errorf("acknowledged write not readable: %v", err)
			}
			// A decision that must reflect that write is not answered from
			// the stale snapshot.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			wait := proto_clone(click)
			wait.MinRevision = other.GetAccount().GetRevision()
			_, err = e.decide.CheckFeature(ctx, wait)
			wantCode(t, err, codes.DeadlineExceeded)

			// Repair: the follower retries and catches up.
			repaired := e.restore(tc.name, tc.key(sess.GetId()), sess.GetId())
			ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel2()
			after := proto_clone(click)
			after.MinRevision = repaired
			resp, err := e.decide.CheckFeature(ctx2, after)
			if err != nil {
				t.Fatalf("after repair: %v", err)
			}
			if resp.GetRevision() < repaired || resp.GetDecision().GetAllowed() {
				t.Fatalf("after repair: %v at %d (repaired at %d)", resp.GetDecision(), resp.GetRevision(), repaired)
			}
		})
	}
}

func proto_clone(r *gatehousev1.CheckFeatureRequest) *gatehousev1.CheckFeatureRequest {
	return &gatehousev1.CheckFeatureRequest{SessionId: r.GetSessionId(), Actor: r.GetActor(), Feature: r.GetFeature(), Url: r.GetUrl(),
		Frame: r.GetFrame(), Element: r.GetElement(), MinRevision: r.GetMinRevision()}
}

// restore writes a valid record at key again, keeping the agent click
// restriction on.
func (e *testEnv) restore(kind, key, sessID string) uint64 {
	e.t.Helper()
	rev, err := e.store.Update(context.Background(), func(tx store.Tx) error {
		switch kind {
		case "settings":
			s := policy.DefaultLiveGuideSettings("acme")
			s.AgentClickRestricted = true
			return store.PutSettings(tx, &s)
		case "account":
			return store.PutAccount(tx, &policy.Account{ID: "acme", DisplayName: "Acme"})
		case "representative":
			return store.PutRepresentative(tx, "acme", &policy.Representative{ID: "alice", DisplayName: "Alice", LiveGuideEnabled: true})
		case "session":
			return store.PutSession(tx, &policy.Session{ID: sessID, AccountID: "acme", Kind: policy.SessionKindLiveGuide,
				State: policy.SessionStateActive, RepresentativeID: "alice", CustomerID: "cust-1", StartTime: time.Now().UTC()})
		default:
			return tx.Delete(key)
		}
	})
	if err != nil {
		e.t.Fatalf("restore %s: %v", key, err)
	}
	return rev
}

// TestFailClosed_CorruptRecordRefusesRestart: a store with an undecodable
// record does not produce a snapshot at all, so a restarting server cannot
// serve decisions made from a partial or defaulted view of it.
func TestFailClosed_CorruptRecordRefusesRestart(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	e.rawPut("t/acme/settings", []byte("\x00garbage"))
	dir := e.dir
	e.stop()

	st, err := bolt.Open(dir)
	if err != nil {
		t.Fatalf("the file itself is sound and must open: %v", err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := snapshot.New(context.Background(), st, log); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("snapshot over a store with a corrupt record: %v, want ErrCorrupt", err)
	}
}

// TestFailClosed_BrokenRecordsOnlyNarrow stores records that decode but no
// longer make sense (as a future binary or a damaged import could leave
// them): an allowlist entry whose pattern is a public suffix, a privacy
// rule with an unsupported selector, a portal whose parent is missing, a
// representative in a team that does not exist. Each decision they affect
// is a denial, never allowed.
func TestFailClosed_BrokenRecordsOnlyNarrow(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	live := e.MustStartSession("acme")
	ctx := ctxT(t)
	all := &gatehousev1.SupportFunctions{SendFiles: true, ReceiveFiles: true}
	if _, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "help", Name: "Help", Functions: all}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Id: "tier1", Name: "Tier 1", PortalId: "help"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.UpdateRepresentative(ctx, &gatehousev1.UpdateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "alice", TeamId: "tier1", Functions: all}, UpdateMask: mask("team_id", "functions")}); err != nil {
		t.Fatal(err)
	}
	sup, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
		RepresentativeId: "alice", CustomerId: "cust-2", PortalId: "help-default"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(sess string, f gatehousev1.Feature, url string, el *gatehousev1.Element) *gatehousev1.CheckFeatureRequest {
		return &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"), Feature: f, Url: url, Element: el}
	}
	button := &gatehousev1.Element{Tag: "button", Classes: []string{"ok"}}
	checks := []*gatehousev1.CheckFeatureRequest{
		check(live.GetId(), gatehousev1.Feature_FEATURE_NAVIGATE, "https://www.example.com/", nil),
		check(live.GetId(), gatehousev1.Feature_FEATURE_CLICK, "https://www.example.com/", button),
		check(sup.GetSession().GetId(), gatehousev1.Feature_FEATURE_SEND_FILES, "", nil),
	}
	for _, c := range checks {
		if d := e.MustCheck(c); !d.GetDecision().GetAllowed() {
			t.Fatalf("before: %v is %v; the test needs it allowed", c, d.GetDecision())
		}
	}

	rev, err := e.store.Update(ctx, func(tx store.Tx) error {
		if err := store.PutAllowlistEntry(tx, "acme", &policy.AllowlistEntry{ID: "tld", Pattern: "co.uk"}); err != nil {
			return err
		}
		if err := store.PutPrivacyRule(tx, "acme", &policy.PrivacyRule{ID: "odd", Kind: policy.PrivacyRuleKindButtonBlock, Selector: "a:hover ~ b"}); err != nil {
			return err
		}
		p, err := store.GetPortal(tx, "acme", "help")
		if err != nil {
			return err
		}
		p.ParentID = "gone"
		return store.PutPortal(tx, "acme", &p)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []gatehousev1.Reason{
		gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED,
		gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED,
		gatehousev1.Reason_REASON_PORTAL_FUNCTION_DISABLED,
	}
	for i, c := range checks {
		c.MinRevision = rev
		d := e.MustCheck(c)
		if d.GetDecision().GetAllowed() || d.GetDecision().GetReason() != want[i] {
			t.Errorf("after storing broken records: %v is %v, want %v", c, d.GetDecision(), want[i])
		}
	}
	// With the allowlist entry fixed, the broken privacy rule still blocks
	// every button.
	rev, err = e.store.Update(ctx, func(tx store.Tx) error {
		return store.PutAllowlistEntry(tx, "acme", &policy.AllowlistEntry{ID: "tld", Pattern: "example.com"})
	})
	if err != nil {
		t.Fatal(err)
	}
	checks[1].MinRevision = rev
	if d := e.MustCheck(checks[1]); d.GetDecision().GetReason() != gatehousev1.Reason_REASON_ELEMENT_BLOCKED {
		t.Errorf("a privacy rule that does not compile: click is %v, want ELEMENT_BLOCKED", d.GetDecision())
	}
}
