package server

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
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

// TestFailClosed_UndecodableRecordQuarantinesItsAccount corrupts one
// stored record of an account whose agent may not click. That account
// leaves the snapshot: decisions in its sessions fail with DATA_LOSS (an
// undecodable session record: that session's decisions alone), never an
// answer, and never "allowed". Every other account goes on: a write to one is seen by the
// very next decision. Once the record is repaired, the account is back.
func TestFailClosed_UndecodableRecordQuarantinesItsAccount(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		key  func(sess string) string
		code codes.Code
	}{
		{"settings", func(string) string { return "t/acme/settings" }, codes.DataLoss},
		{"account", func(string) string { return "acct/acme" }, codes.DataLoss},
		{"representative", func(string) string { return "t/acme/rep/alice" }, codes.DataLoss},
		{"allowlist entry", func(string) string { return "t/acme/allow/new" }, codes.DataLoss},
		{"privacy rule", func(string) string { return "t/acme/privacy/new" }, codes.DataLoss},
		{"portal", func(string) string { return "t/acme/portal/new" }, codes.DataLoss},
		{"session", func(s string) string { return "t/acme/session/" + s }, codes.DataLoss},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := MustStart(t, "", func(o *Options) { o.MaxRevisionWait = 200 * time.Millisecond })
			e.MustCreateAccount("acme")
			e.MustCreateAccount("other")
			sess := e.MustStartSession("acme")
			otherSess := e.MustStartSession("other")
			e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true}, "agent_click_restricted")
			click := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/"}
			otherClick := proto_clone(click)
			otherClick.SessionId = otherSess.GetId()
			if d := e.MustCheck(click); d.GetDecision().GetAllowed() || d.GetDecision().GetReason() != gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED {
				t.Fatalf("before: %v, want AGENT_CLICK_RESTRICTED", d.GetDecision())
			}

			bad := e.rawPut(tc.key(sess.GetId()), []byte(`{"agent_click_restricted": fals`))
			wait := proto_clone(click)
			wait.MinRevision = bad
			_, err := e.decide.CheckFeature(ctxT(t), wait)
			wantCode(t, err, tc.code)
			_, err = e.decide.CheckFeatures(ctxT(t), &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{otherClick, click}})
			wantCode(t, err, tc.code)
			wantAccounts, wantSessions := 1, 0
			if tc.name == "session" {
				wantAccounts, wantSessions = 0, 1
			}
			if n, m := e.srv.snaps.Current().NumUnreadable(), e.srv.snaps.Current().NumUnreadableSessions(); n != wantAccounts || m != wantSessions {
				t.Fatalf("%d unreadable accounts and %d sessions in the snapshot; want %d and %d", n, m, wantAccounts, wantSessions)
			}

			// The other account is not held up: a write to it is seen by
			// the next decision, at once.
			start := time.Now()
			w := e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "other", AgentClickRestricted: true}, "agent_click_restricted")
			if took := time.Since(start); took >= 200*time.Millisecond {
				t.Errorf("a write to another account took %v: it waited for a stuck snapshot", took)
			}
			if d := e.MustCheck(otherClick); d.GetRevision() < w.GetRevision() || d.GetDecision().GetReason() != gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED {
				t.Fatalf("other account after its write at %d: %v at %d; want AGENT_CLICK_RESTRICTED", w.GetRevision(), d.GetDecision(), d.GetRevision())
			}

			// Repair: the account is back, as it was.
			repaired := e.restore(tc.name, tc.key(sess.GetId()), sess.GetId())
			after := proto_clone(click)
			after.MinRevision = repaired
			resp, err := e.decide.CheckFeature(ctxT(t), after)
			if err != nil {
				t.Fatalf("after repair: %v", err)
			}
			if resp.GetRevision() < repaired || resp.GetDecision().GetAllowed() || resp.GetDecision().GetReason() != gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED {
				t.Fatalf("after repair: %v at %d (repaired at %d); want AGENT_CLICK_RESTRICTED", resp.GetDecision(), resp.GetRevision(), repaired)
			}
			if n, m := e.srv.snaps.Current().NumUnreadable(), e.srv.snaps.Current().NumUnreadableSessions(); n != 0 || m != 0 {
				t.Fatalf("%d unreadable accounts and %d sessions after the repair; want none", n, m)
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

// TestFailClosed_CorruptRecordAtStart: a store with undecodable records
// still starts; the account with one is left out (its decisions and its
// reads of that record answer DATA_LOSS, never a defaulted view), a token
// that cannot be decoded authenticates nobody, and every other account is
// served.
func TestFailClosed_CorruptRecordAtStart(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")
	sess := e.MustStartSession("acme")
	otherSess := e.MustStartSession("other")
	e.MustCreateAccount("third")
	badSess, goodSess := e.MustStartSession("third"), e.MustStartSession("third")
	e.rawPut("t/acme/settings", []byte("\x00garbage"))
	e.rawPut("token/k-broken", []byte("{"))
	e.rawPut("t/third/session/"+badSess.GetId(), []byte("{"))
	e = e.Restart()

	if n := e.srv.snaps.Current().NumUnreadable(); n != 1 {
		t.Fatalf("%d unreadable accounts after start; want 1", n)
	}
	if e.srv.snaps.Current().Token("k-broken") != nil {
		t.Fatal("an undecodable token is in the snapshot")
	}
	click := func(id string) (*gatehousev1.CheckFeatureResponse, error) {
		return e.decide.CheckFeature(ctxT(t), &gatehousev1.CheckFeatureRequest{SessionId: id, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/"})
	}
	_, err := click(sess.GetId())
	st := wantCode(t, err, codes.DataLoss)
	if !strings.Contains(st.Message(), `"acme"`) {
		t.Errorf("DATA_LOSS message %q does not name the account", st.Message())
	}
	_, err = e.decide.GetSessionPolicy(ctxT(t), &gatehousev1.GetSessionPolicyRequest{SessionId: sess.GetId(), Actor: agent("alice")})
	wantCode(t, err, codes.DataLoss)
	_, err = e.admin.GetLiveGuideSettings(ctxT(t), &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "acme"})
	wantCode(t, err, codes.DataLoss)
	if resp, err := click(otherSess.GetId()); err != nil || !resp.GetDecision().GetAllowed() {
		t.Fatalf("a healthy account after start: %v %v; want allowed", resp, err)
	}
	// An undecodable session takes out that session alone.
	_, err = click(badSess.GetId())
	st = wantCode(t, err, codes.DataLoss)
	if !strings.Contains(st.Message(), badSess.GetId()) {
		t.Errorf("DATA_LOSS message %q does not name the session", st.Message())
	}
	if resp, err := click(goodSess.GetId()); err != nil || !resp.GetDecision().GetAllowed() {
		t.Fatalf("the account of an undecodable session, its other session: %v %v; want allowed", resp, err)
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

// TestFailClosed_DamagedAccountCanBeDeleted: when the account's own record
// cannot be decoded, an unconditional DeleteAccount still removes it and
// everything it owns (its co-browse URL is released), the repair of last
// resort; a conditional one cannot check its etag and answers DATA_LOSS.
func TestFailClosed_DamagedAccountCanBeDeleted(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	url, err := e.admin.SetCobrowseUrl(ctx, &gatehousev1.SetCobrowseUrlRequest{AccountId: "acme", Url: "https://acme.support.me"})
	if err != nil {
		t.Fatal(err)
	}
	bad := e.rawPut("acct/acme", []byte("{broken"))
	if _, err := e.srv.snaps.WaitFor(ctx, bad); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: "acme", Etag: url.GetAccount().GetEtag()})
	wantCode(t, err, codes.DataLoss)
	if _, err := e.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: "acme"}); err != nil {
		t.Fatalf("unconditional delete of a damaged account: %v", err)
	}
	if n := e.srv.snaps.Current().NumUnreadable(); n != 0 {
		t.Fatalf("%d unreadable accounts after the delete; want 0", n)
	}
	_, err = e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	wantCode(t, err, codes.NotFound)
	// The URL is free again: a new account can take it.
	e.MustCreateAccount("acme2")
	if _, err := e.admin.SetCobrowseUrl(ctx, &gatehousev1.SetCobrowseUrlRequest{AccountId: "acme2", Url: "https://acme.support.me"}); err != nil {
		t.Fatalf("the deleted account's co-browse URL is still taken: %v", err)
	}
}

// damageSession rewrites the stored record of session id of acct with one
// bit of a field name flipped ("customer_id" -> "customer_ie"): still valid
// JSON with a valid checksum, but not a session record. It returns the
// commit's revision.
func (e *testEnv) damageSession(acct, id string) uint64 {
	e.t.Helper()
	key := "t/" + acct + "/session/" + id
	var raw []byte
	if err := e.store.View(context.Background(), func(tx store.ReadTx) error {
		v, _, err := tx.Get(key)
		raw = bytes.Clone(v)
		return err
	}); err != nil {
		e.t.Fatalf("read %s: %v", key, err)
	}
	i := bytes.Index(raw, []byte(`"customer_id"`))
	if i < 0 {
		e.t.Fatalf("no customer_id in %s", raw)
	}
	raw[i+len(`"customer_i`)] ^= 0x01
	return e.rawPut(key, raw)
}

// TestFailClosed_DamagedSessionRecordIsDataLoss damages the records of two
// sessions (a Live Guide and a support one) of account b and calls every
// session-addressed RPC of the API (found from the access rules, so a new
// one cannot be left out) on them, with the damage found in a commit while
// running and again at start: each answers DATA_LOSS naming the session to
// callers that may see account b, PERMISSION_DENIED to callers scoped to
// another account (as for a readable session), never NOT_FOUND or an
// answer. The account's other session is served, ListSessions of the
// account fails with DATA_LOSS rather than leaving the session out, and
// writing the record again brings the sessions back.
func TestFailClosed_DamagedSessionRecordIsDataLoss(t *testing.T) {
	t.Parallel()
	e := mustStartAuth(t)
	op := withToken(ctxT(t), e.tokens["operator"])
	healthy, err := e.testEnv.sessions.StartSession(op, &gatehousev1.StartSessionRequest{AccountId: "b", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-2"})
	if err != nil {
		t.Fatal(err)
	}
	var originals []policy.Session
	if err := e.store.View(op, func(tx store.ReadTx) error {
		for _, id := range []string{e.sessions["b"], e.sessions["b-support"]} {
			s, err := store.GetSession(tx, id)
			if err != nil {
				return err
			}
			originals = append(originals, s)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var damaged uint64
	for _, id := range []string{e.sessions["b"], e.sessions["b-support"]} {
		damaged = e.damageSession("b", id)
	}
	if _, err := e.srv.snaps.WaitFor(op, damaged); err != nil {
		t.Fatal(err)
	}

	var sessionRPCs []protoreflect.MethodDescriptor
	for _, sd := range services {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			if namesSession(md.Input()) {
				sessionRPCs = append(sessionRPCs, md)
			}
		}
	}
	if len(sessionRPCs) < 8 {
		t.Fatalf("%d session-addressed RPCs found in the access rules; want at least 8", len(sessionRPCs))
	}
	checkAll := func(t *testing.T, e *authEnv) {
		ctx := ctxT(t)
		if n := e.srv.snaps.Current().NumUnreadableSessions(); n != 2 {
			t.Errorf("%d unreadable sessions in the snapshot; want 2", n)
		}
		if n := e.srv.snaps.Current().NumUnreadable(); n != 0 {
			t.Errorf("%d unreadable accounts; want 0 (a session takes out itself alone)", n)
		}
		for _, md := range sessionRPCs {
			rule := accessRules["/"+string(md.Parent().FullName())+"/"+string(md.Name())]
			scoped, all := "admin-a", "admin-all"
			if rule.role == auth.RoleDecider {
				scoped, all = "decider-a", "decider-all"
			}
			req := e.request(t, md, "b")
			for _, who := range []string{"operator", all} {
				err := e.call(ctx, md, e.tokens[who], req)
				st := status.Convert(err)
				if st.Code() != codes.DataLoss || !strings.Contains(st.Message(), "cannot be read from the store") {
					t.Errorf("%s by %s on a damaged session: %v; want DATA_LOSS", md.Name(), who, err)
				}
			}
			if err := e.call(ctx, md, e.tokens[scoped], req); status.Code(err) != codes.PermissionDenied {
				t.Errorf("%s by %s (scoped to account a) on a damaged session of b: %v; want PERMISSION_DENIED", md.Name(), scoped, err)
			}
		}
		if _, err := e.decide.CheckFeature(withToken(ctx, e.tokens["decider-all"]), &gatehousev1.CheckFeatureRequest{SessionId: healthy.GetSession().GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}); err != nil {
			t.Errorf("the account's healthy session: %v; want a decision", err)
		}
		_, err := e.testEnv.sessions.ListSessions(withToken(ctx, e.tokens["decider-all"]), &gatehousev1.ListSessionsRequest{AccountId: "b"})
		wantCode(t, err, codes.DataLoss)
	}
	t.Run("damaged while running", func(t *testing.T) { checkAll(t, e) })

	e.stop()
	e = &authEnv{testEnv: MustStart(t, e.dir, func(o *Options) { o.Authenticate = true }), tokens: e.tokens, sessions: e.sessions, notifications: e.notifications}
	t.Run("damaged at start", func(t *testing.T) { checkAll(t, e) })

	// Repair: the records written again, the sessions are served.
	repaired, err := e.store.Update(op, func(tx store.Tx) error {
		for i := range originals {
			if err := store.PutSession(tx, &originals[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.decide.CheckFeature(withToken(ctxT(t), e.tokens["decider-all"]), &gatehousev1.CheckFeatureRequest{SessionId: e.sessions["b"], Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT, MinRevision: repaired})
	if err != nil || resp.GetRevision() < repaired {
		t.Fatalf("after repair: %v %v", resp, err)
	}
	if n := e.srv.snaps.Current().NumUnreadableSessions(); n != 0 {
		t.Fatalf("%d unreadable sessions after the repair; want 0", n)
	}
}

// namesSession reports whether a request names a session by id: a
// session_id field of its own or of the messages of a repeated field (a
// batch's checks).
func namesSession(m protoreflect.MessageDescriptor) bool {
	fields := m.Fields()
	if fd := fields.ByName("session_id"); fd != nil && fd.Kind() == protoreflect.StringKind {
		return true
	}
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.IsList() && fd.Message() != nil && fd.Message().Fields().ByName("session_id") != nil {
			return true
		}
	}
	return false
}
