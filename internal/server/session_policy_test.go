package server

import (
	"errors"
	"io"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

func TestGetSessionPolicy(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustAllow("acme", "main", "example.com")
	e.MustPrivacyRule("acme", &gatehousev1.PrivacyRule{Id: "card", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_DATA_MASK, Selector: "#card"})
	sess := e.MustStartSession("acme")

	get := func(actor *gatehousev1.Actor, lang string) (*gatehousev1.SessionPolicy, error) {
		resp, err := e.decide.GetSessionPolicy(ctx, &gatehousev1.GetSessionPolicyRequest{SessionId: sess.GetId(), Actor: actor, Language: lang})
		return resp.GetPolicy(), err
	}
	p, err := get(customer("cust-1"), "fr-CA")
	if err != nil {
		t.Fatal(err)
	}
	if p.GetLanguage() != "fr" || p.GetCustomization().GetLanguage() != "fr" || p.GetAgentDisplayName() != p.GetCustomization().GetAgentAlias() || p.GetAgentDisplayName() == "" {
		t.Fatalf("negotiated policy = %v", p)
	}
	if len(p.GetAllowlist()) != 1 || p.GetAllowlist()[0].GetPattern() != "example.com" || len(p.GetPrivacyRules()) != 1 || p.GetSession().GetId() != sess.GetId() {
		t.Fatalf("policy content = %v", p)
	}
	if p.GetSettings().GetClipboardAgent() != true || p.GetRevision() < sess.GetRevision() {
		t.Fatalf("policy settings/revision = %v", p)
	}
	if p2, _ := get(agent("alice"), "xx-unknown"); p2.GetLanguage() != "en" {
		t.Fatalf("unknown language gave %q", p2.GetLanguage())
	}

	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", DisplayAgentName: true, SessionStartUrl: "https://www.example.com/start"}, "display_agent_name", "session_start_url")
	p, err = get(agent("alice"), "de")
	if err != nil {
		t.Fatal(err)
	}
	if p.GetAgentDisplayName() != "Alice" || p.GetSessionStartUrl() != "https://www.example.com/start" || p.GetLanguage() != "de" {
		t.Fatalf("with display_agent_name: %v", p)
	}

	_, err = get(agent("mallory"), "en")
	st := wantCode(t, err, codes.PermissionDenied)
	if errorReason(st) != reasonActorNotInSession {
		t.Fatalf("reason %q", errorReason(st))
	}
	_, err = e.decide.GetSessionPolicy(ctx, &gatehousev1.GetSessionPolicyRequest{SessionId: "s-nope", Actor: agent("alice")})
	wantCode(t, err, codes.NotFound)
	_, err = e.decide.GetSessionPolicy(ctx, &gatehousev1.GetSessionPolicyRequest{SessionId: sess.GetId()})
	wantInvalid(t, err, "actor")
}

func TestWatchSessionPolicy(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")
	sess := e.MustStartSession("acme")
	stream, err := e.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: sess.GetId(), Actor: agent("alice"), Language: "en"})
	if err != nil {
		t.Fatal(err)
	}
	type msg struct {
		p   *gatehousev1.SessionPolicy
		err error
	}
	msgs := make(chan msg, 16)
	go func() {
		for {
			resp, err := stream.Recv()
			msgs <- msg{resp.GetPolicy(), err}
			if err != nil {
				return
			}
		}
	}()
	next := func() msg {
		t.Helper()
		select {
		case m := <-msgs:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no message from WatchSessionPolicy")
			return msg{}
		}
	}
	first := next()
	if first.err != nil || first.p.GetSettings().GetChat() {
		t.Fatalf("first = %v", first)
	}
	// A change to another account produces nothing; the next message is
	// the change to this one.
	if _, err := e.admin.UpdateAccount(ctx, &gatehousev1.UpdateAccountRequest{Account: &gatehousev1.Account{Id: "other", DisplayName: "Changed"}, UpdateMask: mask("display_name")}); err != nil {
		t.Fatal(err)
	}
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", Chat: true}, "chat")
	second := next()
	if second.err != nil || !second.p.GetSettings().GetChat() || second.p.GetRevision() <= first.p.GetRevision() {
		t.Fatalf("second = %v", second)
	}
	e.MustAllow("acme", "main", "example.com")
	third := next()
	if third.err != nil || len(third.p.GetAllowlist()) != 1 {
		t.Fatalf("third = %v", third)
	}
	if _, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: sess.GetId()}); err != nil {
		t.Fatal(err)
	}
	last := next()
	if last.err != nil || last.p.GetSession().GetState() != gatehousev1.SessionState_SESSION_STATE_ENDED {
		t.Fatalf("last = %v", last)
	}
	if end := next(); !errors.Is(end.err, io.EOF) {
		t.Fatalf("stream did not end after the session ended: %v", end)
	}
}

// TestWatchSessionPolicy_ShutdownEndsStream: an open watch does not hold up
// a graceful shutdown.
func TestWatchSessionPolicy_ShutdownEndsStream(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	sess := e.MustStartSession("acme")
	// A connection of its own, which the test environment does not close
	// before shutting the server down.
	conn, err := grpc.NewClient(e.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := gatehousev1.NewDecisionServiceClient(conn).WatchSessionPolicy(ctxT(t), &gatehousev1.WatchSessionPolicyRequest{SessionId: sess.GetId(), Actor: customer("cust-1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v with a watch open", d)
	}
	_, err = stream.Recv()
	wantCode(t, err, codes.Unavailable)
}
