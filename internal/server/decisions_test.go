package server

import (
	"context"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc/codes"
)

// TestCheckFeature_Slice is the foundation's vertical slice: an admin turns
// on agent click restriction, a session starts, the agent's click is denied,
// and after a restart the session and the setting are still there.
func TestCheckFeature_Slice(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true}, "agent_click_restricted")
	sess := e.MustStartSession("acme")
	click := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"),
		Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/"}
	resp := e.MustCheck(click)
	d := resp.GetDecision()
	if d.GetAllowed() || d.GetReason() != gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED || d.GetRule() != "agent_click_restricted" || d.GetMessage() == "" {
		t.Fatalf("decision = %v", d)
	}

	e = e.Restart()
	got, err := e.sessions.GetSession(ctxT(t), &gatehousev1.GetSessionRequest{SessionId: sess.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetSession().GetState() != gatehousev1.SessionState_SESSION_STATE_ACTIVE {
		t.Fatalf("session after restart = %v", got.GetSession())
	}
	again := e.MustCheck(click)
	if again.GetDecision().GetReason() != gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED || again.GetRevision() != resp.GetRevision() {
		t.Fatalf("after restart: %v (before: %v)", again, resp)
	}
}

// TestCheckFeature_Switches checks every co-browse feature for agents,
// customers and specialists against the default settings and against the
// opposite of every switch.
func TestCheckFeature_Switches(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	const (
		allowed  = gatehousev1.Reason_REASON_ALLOWED
		disabled = gatehousev1.Reason_REASON_FEATURE_DISABLED
	)
	type want struct {
		agent, customer gatehousev1.Reason
		agentRule       string
		customerRule    string
	}
	defaults := map[gatehousev1.Feature]want{
		gatehousev1.Feature_FEATURE_NAVIGATE:          {allowed, allowed, "", ""},
		gatehousev1.Feature_FEATURE_CLICK:             {allowed, allowed, "", ""},
		gatehousev1.Feature_FEATURE_SCROLL:            {allowed, allowed, "", ""},
		gatehousev1.Feature_FEATURE_TYPE:              {allowed, allowed, "", ""},
		gatehousev1.Feature_FEATURE_VIEW_ELEMENT:      {allowed, allowed, "", ""},
		gatehousev1.Feature_FEATURE_CLIPBOARD:         {allowed, allowed, "", ""},
		gatehousev1.Feature_FEATURE_VIDEO:             {disabled, disabled, "video_agent", "video_customer"},
		gatehousev1.Feature_FEATURE_VOICE_CHAT:        {disabled, disabled, "voice_chat", "voice_chat"},
		gatehousev1.Feature_FEATURE_RECORDING:         {disabled, disabled, "session_recording", "session_recording"},
		gatehousev1.Feature_FEATURE_DOCUMENT_SHARE:    {disabled, disabled, "document_share_agent", "document_share_customer"},
		gatehousev1.Feature_FEATURE_DOCUMENT_DOWNLOAD: {disabled, disabled, "document_download", "document_download"},
		gatehousev1.Feature_FEATURE_CHAT:              {disabled, disabled, "chat", "chat"},
	}
	check := func(t *testing.T, f gatehousev1.Feature, actor *gatehousev1.Actor, reason gatehousev1.Reason, rule string) {
		t.Helper()
		d := e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: actor, Feature: f, Url: "https://www.example.com/"}).GetDecision()
		if d.GetReason() != reason || d.GetAllowed() != (reason == allowed) || d.GetRule() != rule {
			t.Errorf("%v for %v: got %v, want %v rule %q", f, actor.GetRole(), d, reason, rule)
		}
	}
	for f, w := range defaults {
		check(t, f, agent("alice"), w.agent, w.agentRule)
		check(t, f, customer("cust-1"), w.customer, w.customerRule)
	}

	// Flip every switch.
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme",
		AgentClickRestricted: true, AgentInputRestricted: true, ClipboardAgent: false, ClipboardCustomer: true,
		VideoAgent: true, VideoCustomer: false, VoiceChat: true, SessionRecording: true,
		DocumentShareAgent: false, DocumentShareCustomer: true, DocumentDownload: true, Chat: true})
	after := map[gatehousev1.Feature]want{
		gatehousev1.Feature_FEATURE_NAVIGATE:          {allowed, allowed, "", ""},
		gatehousev1.Feature_FEATURE_CLICK:             {gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, allowed, "agent_click_restricted", ""},
		gatehousev1.Feature_FEATURE_SCROLL:            {gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, allowed, "agent_click_restricted", ""},
		gatehousev1.Feature_FEATURE_TYPE:              {gatehousev1.Reason_REASON_AGENT_INPUT_RESTRICTED, allowed, "agent_input_restricted", ""},
		gatehousev1.Feature_FEATURE_VIEW_ELEMENT:      {allowed, allowed, "", ""},
		gatehousev1.Feature_FEATURE_CLIPBOARD:         {disabled, allowed, "clipboard_agent", ""},
		gatehousev1.Feature_FEATURE_VIDEO:             {allowed, disabled, "", "video_customer"},
		gatehousev1.Feature_FEATURE_VOICE_CHAT:        {allowed, allowed, "", ""},
		gatehousev1.Feature_FEATURE_RECORDING:         {allowed, allowed, "", ""},
		gatehousev1.Feature_FEATURE_DOCUMENT_SHARE:    {disabled, allowed, "document_share_agent", ""},
		gatehousev1.Feature_FEATURE_DOCUMENT_DOWNLOAD: {allowed, allowed, "", ""},
		gatehousev1.Feature_FEATURE_CHAT:              {allowed, allowed, "", ""},
	}
	for f, w := range after {
		check(t, f, agent("alice"), w.agent, w.agentRule)
		check(t, f, customer("cust-1"), w.customer, w.customerRule)
	}
}

func TestCheckFeature_SessionAndActor(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	reason := func(actor *gatehousev1.Actor, f gatehousev1.Feature) gatehousev1.Reason {
		t.Helper()
		return e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: actor, Feature: f, Url: "https://a.example/"}).GetDecision().GetReason()
	}
	for _, tc := range []struct {
		name  string
		actor *gatehousev1.Actor
		f     gatehousev1.Feature
		want  gatehousev1.Reason
	}{
		{"other agent", agent("mallory"), gatehousev1.Feature_FEATURE_CLICK, gatehousev1.Reason_REASON_ACTOR_NOT_IN_SESSION},
		{"customer id as agent", agent("cust-1"), gatehousev1.Feature_FEATURE_CLICK, gatehousev1.Reason_REASON_ACTOR_NOT_IN_SESSION},
		{"agent id as customer", customer("alice"), gatehousev1.Feature_FEATURE_CLICK, gatehousev1.Reason_REASON_ACTOR_NOT_IN_SESSION},
		{"uninvited specialist", &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST, Id: "spec"}, gatehousev1.Feature_FEATURE_CLICK, gatehousev1.Reason_REASON_ACTOR_NOT_IN_SESSION},
		{"support function in live guide", agent("alice"), gatehousev1.Feature_FEATURE_SEND_FILES, gatehousev1.Reason_REASON_FEATURE_NOT_IN_SESSION_KIND},
		{"actor check comes before kind", agent("mallory"), gatehousev1.Feature_FEATURE_SEND_FILES, gatehousev1.Reason_REASON_ACTOR_NOT_IN_SESSION},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reason(tc.actor, tc.f); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}

	if _, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: sess.GetId(), CustomerRating: 5}); err != nil {
		t.Fatal(err)
	}
	// Session ended wins over everything else.
	for _, actor := range []*gatehousev1.Actor{agent("alice"), customer("cust-1"), agent("mallory")} {
		if got := reason(actor, gatehousev1.Feature_FEATURE_CHAT); got != gatehousev1.Reason_REASON_SESSION_ENDED {
			t.Fatalf("after end, %v: got %v", actor, got)
		}
	}
	_, err := e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: "s-nope", Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	wantCode(t, err, codes.NotFound)
}

func TestCheckFeature_Validation(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	ok := func() *gatehousev1.CheckFeatureRequest {
		return &gatehousev1.CheckFeatureRequest{SessionId: "s-1", Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/"}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*gatehousev1.CheckFeatureRequest)
		field  string
	}{
		{"no session", func(r *gatehousev1.CheckFeatureRequest) { r.SessionId = "" }, "session_id"},
		{"bad session", func(r *gatehousev1.CheckFeatureRequest) { r.SessionId = "../x" }, "session_id"},
		{"no actor", func(r *gatehousev1.CheckFeatureRequest) { r.Actor = nil }, "actor"},
		{"no role", func(r *gatehousev1.CheckFeatureRequest) { r.Actor.Role = 0 }, "actor.role"},
		{"unknown role", func(r *gatehousev1.CheckFeatureRequest) { r.Actor.Role = 42 }, "actor.role"},
		{"no actor id", func(r *gatehousev1.CheckFeatureRequest) { r.Actor.Id = "" }, "actor.id"},
		{"no feature", func(r *gatehousev1.CheckFeatureRequest) { r.Feature = 0 }, "feature"},
		{"unknown feature", func(r *gatehousev1.CheckFeatureRequest) { r.Feature = 50 }, "feature"},
		{"unknown frame", func(r *gatehousev1.CheckFeatureRequest) { r.Frame = 7 }, "frame"},
		{"no url for click", func(r *gatehousev1.CheckFeatureRequest) { r.Url = "" }, "url"},
		{"huge url", func(r *gatehousev1.CheckFeatureRequest) {
			r.Url = "https://a.example/" + strings.Repeat("a", maxURLLength)
		}, "url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ok()
			tc.mutate(req)
			_, err := e.decide.CheckFeature(ctx, req)
			wantInvalid(t, err, tc.field)
		})
	}
}

func TestCheckFeatures_Batch(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true, Chat: true}, "agent_click_restricted", "chat")
	sess := e.MustStartSession("acme")
	var checks []*gatehousev1.CheckFeatureRequest
	features := []gatehousev1.Feature{gatehousev1.Feature_FEATURE_CLICK, gatehousev1.Feature_FEATURE_CHAT, gatehousev1.Feature_FEATURE_VIDEO, gatehousev1.Feature_FEATURE_SEND_FILES}
	for i := range 12 {
		f := features[i%len(features)]
		actor := agent("alice")
		if i%3 == 0 {
			actor = customer("cust-1")
		}
		checks = append(checks, &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: actor, Feature: f, Url: "https://a.example/"})
	}
	// The same check twice in a batch is answered twice, identically.
	checks = append(checks, checks[1], checks[1])
	resp, err := e.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: checks})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != len(checks) {
		t.Fatalf("%d results for %d checks", len(resp.GetResults()), len(checks))
	}
	for i, c := range checks {
		single := e.MustCheck(c)
		got := resp.GetResults()[i]
		if got.GetDecision().GetReason() != single.GetDecision().GetReason() || got.GetDecision().GetRule() != single.GetDecision().GetRule() || got.GetRevision() != resp.GetRevision() {
			t.Errorf("check %d: batch %v, single %v", i, got, single)
		}
	}

	_, err = e.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{})
	wantInvalid(t, err, "checks")
	big := make([]*gatehousev1.CheckFeatureRequest, maxChecks+1)
	for i := range big {
		big[i] = checks[0]
	}
	_, err = e.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: big})
	wantInvalid(t, err, "checks")
	_, err = e.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{checks[0], {SessionId: sess.GetId()}}})
	wantInvalid(t, err, "checks[1].actor", "checks[1].feature")
	_, err = e.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{checks[0],
		{SessionId: "s-unknown", Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}}})
	wantCode(t, err, codes.NotFound)
}

func TestCheckFeature_MinRevision(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	req := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT, MinRevision: sess.GetRevision()}
	if got := e.MustCheck(req); got.GetRevision() < sess.GetRevision() {
		t.Fatalf("answered at %d, asked for %d", got.GetRevision(), sess.GetRevision())
	}

	// A revision that never comes: the call's deadline bounds the wait.
	req.MinRevision = sess.GetRevision() + 1000
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := e.decide.CheckFeature(ctx, req)
	wantCode(t, err, codes.DeadlineExceeded)

	// A revision that arrives while the call waits.
	req.MinRevision = sess.GetRevision() + 1
	done := make(chan *gatehousev1.CheckFeatureResponse, 1)
	errc := make(chan error, 1)
	go func() {
		resp, err := e.decide.CheckFeature(ctxT(t), req)
		if err != nil {
			errc <- err
			return
		}
		done <- resp
	}()
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", Chat: true}, "chat")
	select {
	case resp := <-done:
		if resp.GetRevision() < req.GetMinRevision() || !resp.GetDecision().GetAllowed() {
			t.Fatalf("waited answer = %v", resp)
		}
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("check with min_revision never answered")
	}
}

// TestCheckFeature_ReadYourWrites: a decision right after a write's
// response always reflects that write.
func TestCheckFeature_ReadYourWrites(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	req := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/"}
	for i := range 30 {
		on := i%2 == 0
		s := e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: on}, "agent_click_restricted")
		got := e.MustCheck(req)
		if got.GetDecision().GetAllowed() == on || got.GetRevision() < s.GetRevision() {
			t.Fatalf("round %d: restricted=%v but decision %v at revision %d (write at %d)", i, on, got.GetDecision(), got.GetRevision(), s.GetRevision())
		}
	}
}

func TestDeleteAccount_RemovesSessions(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")
	sess := e.MustStartSession("acme")
	keep := e.MustStartSession("other")
	if _, err := e.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: "acme"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	wantCode(t, err, codes.NotFound)
	_, err = e.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: sess.GetId()})
	wantCode(t, err, codes.NotFound)
	if d := e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: keep.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLIPBOARD, Url: "https://a.example/"}); !d.GetDecision().GetAllowed() {
		t.Fatalf("other account's session affected: %v", d)
	}
	// Recreating the account does not resurrect the old session.
	e.MustCreateAccount("acme")
	_, err = e.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: sess.GetId()})
	wantCode(t, err, codes.NotFound)
}
