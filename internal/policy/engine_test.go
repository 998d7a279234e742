package policy

import (
	"errors"
	"testing"
)

const page = "https://www.example.com/"

func testSnapshot(settings LiveGuideSettings, sessions ...*Session) *Snapshot {
	acct := Compile(AccountData{
		Account:         Account{ID: "acme"},
		Settings:        settings,
		Representatives: []Representative{{ID: "alice", LiveGuideEnabled: true}},
	})
	sm := map[string]*Session{}
	for _, s := range sessions {
		sm[s.ID] = s
	}
	return NewSnapshot(7, map[string]*AccountState{"acme": acct}, sm)
}

func liveGuide(id string) *Session {
	return &Session{ID: id, AccountID: "acme", Kind: SessionKindLiveGuide, State: SessionStateActive,
		RepresentativeID: "alice", CustomerID: "cust", Specialists: []Specialist{{ID: "spec"}}}
}

func TestSnapshot_Check(t *testing.T) {
	t.Parallel()
	restricted := DefaultLiveGuideSettings("acme")
	restricted.AgentClickRestricted = true
	restricted.AgentInputRestricted = true
	ended := liveGuide("s-ended")
	ended.State = SessionStateEnded
	support := liveGuide("s-support")
	support.Kind = SessionKindSupport
	snap := testSnapshot(restricted, liveGuide("s-1"), ended, support)

	for _, tc := range []struct {
		name string
		q    Query
		want Decision
	}{
		{"agent click restricted", Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: FeatureClick, URL: page}, Decision{Reason: ReasonAgentClickRestricted, Rule: "agent_click_restricted"}},
		{"agent scroll restricted with clicks", Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: FeatureScroll, URL: page}, Decision{Reason: ReasonAgentClickRestricted, Rule: "agent_click_restricted"}},
		{"specialist is an agent", Query{SessionID: "s-1", Role: RoleExternalSpecialist, ActorID: "spec", Feature: FeatureClick, URL: page}, Decision{Reason: ReasonAgentClickRestricted, Rule: "agent_click_restricted"}},
		{"agent input restricted", Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: FeatureType, URL: page}, Decision{Reason: ReasonAgentInputRestricted, Rule: "agent_input_restricted"}},
		{"customer may click", Query{SessionID: "s-1", Role: RoleCustomer, ActorID: "cust", Feature: FeatureClick, URL: page}, Decision{Allowed: true, Reason: ReasonAllowed}},
		{"customer may type", Query{SessionID: "s-1", Role: RoleCustomer, ActorID: "cust", Feature: FeatureType, URL: page}, Decision{Allowed: true, Reason: ReasonAllowed}},
		{"clipboard default on", Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: FeatureClipboard, URL: page}, Decision{Allowed: true, Reason: ReasonAllowed}},
		{"chat default off", Query{SessionID: "s-1", Role: RoleCustomer, ActorID: "cust", Feature: FeatureChat, URL: page}, Decision{Reason: ReasonFeatureDisabled, Rule: "chat"}},
		{"ended first", Query{SessionID: "s-ended", Role: RoleAgent, ActorID: "mallory", Feature: FeatureSendFiles, URL: page}, Decision{Reason: ReasonSessionEnded}},
		{"wrong actor", Query{SessionID: "s-1", Role: RoleAgent, ActorID: "cust", Feature: FeatureChat, URL: page}, Decision{Reason: ReasonActorNotInSession}},
		{"unspecified role", Query{SessionID: "s-1", Role: RoleUnspecified, ActorID: "alice", Feature: FeatureChat, URL: page}, Decision{Reason: ReasonActorNotInSession}},
		{"support feature in live guide", Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: FeatureSendFiles, URL: page}, Decision{Reason: ReasonFeatureNotInSessionKind}},
		{"unknown feature", Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: 99, URL: page}, Decision{Reason: ReasonFeatureNotInSessionKind}},
		{"support session at an unknown portal fails closed", Query{SessionID: "s-support", Role: RoleAgent, ActorID: "alice", Feature: FeatureSendFiles, URL: page}, Decision{Reason: ReasonPortalFunctionDisabled}},
		{"co-browse feature in a support session", Query{SessionID: "s-support", Role: RoleAgent, ActorID: "alice", Feature: FeatureClick, URL: page}, Decision{Reason: ReasonFeatureNotInSessionKind}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := snap.Check(&tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := snap.Check(&Query{SessionID: "nope", Role: RoleAgent, ActorID: "alice", Feature: FeatureChat}); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	orphan := liveGuide("s-orphan")
	orphan.AccountID = "gone"
	if _, err := snap.Apply(8, nil, map[string]*Session{"s-orphan": orphan}).Check(&Query{SessionID: "s-orphan", Role: RoleAgent, ActorID: "alice", Feature: FeatureChat, URL: page}); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("session of an unknown account: %v", err)
	}
}

func TestSnapshot_ApplyIsCopyOnWrite(t *testing.T) {
	t.Parallel()
	base := testSnapshot(DefaultLiveGuideSettings("acme"), liveGuide("s-1"))
	next := base.Apply(8, map[string]*AccountState{"new": Compile(AccountData{Account: Account{ID: "new"}})}, map[string]*Session{"s-1": nil, "s-2": liveGuide("s-2")})
	if base.Revision() != 7 || base.Account("new") != nil || base.Session("s-1") == nil || base.Session("s-2") != nil {
		t.Fatal("Apply changed the original snapshot")
	}
	if next.Revision() != 8 || next.Account("new") == nil || next.Account("acme") == nil || next.Session("s-1") != nil || next.Session("s-2") == nil {
		t.Fatal("Apply did not produce the new state")
	}
	if next.NumAccounts() != 2 || next.NumSessions() != 1 {
		t.Fatalf("counts %d %d", next.NumAccounts(), next.NumSessions())
	}
}

func TestFunctions(t *testing.T) {
	t.Parallel()
	var fs Functions
	fs = fs.With(FunctionSendFiles, true).With(FunctionAnnotations, true).With(FunctionAnnotations, false)
	if !fs.Has(FunctionSendFiles) || fs.Has(FunctionAnnotations) || fs.Has(FunctionReceiveFiles) {
		t.Fatalf("functions = %b", fs)
	}
	if fn, ok := FeatureInviteExternalSpecialist.Function(); !ok || fn != FunctionInviteExternalSpecialist {
		t.Fatal("feature to function mapping")
	}
	if _, ok := FeatureClick.Function(); ok {
		t.Fatal("click is not a function")
	}
	if (FeatureFunctionBase + Feature(NumFunctions)).Valid() {
		t.Fatal("feature past the last function is valid")
	}
}

func BenchmarkSnapshot_Check(b *testing.B) {
	s := DefaultLiveGuideSettings("acme")
	s.AgentClickRestricted = true
	snap := testSnapshot(s, liveGuide("s-1"))
	q := &Query{SessionID: "s-1", Role: RoleAgent, ActorID: "alice", Feature: FeatureClick, URL: "https://www.example.com/"}
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := snap.Check(q); d.Allowed {
			b.Fatal("allowed")
		}
	}
}

func TestSnapshot_DecisionLoggedFollowsApply(t *testing.T) {
	t.Parallel()
	on := Compile(AccountData{Account: Account{ID: "a", DecisionLogPercent: 10}})
	off := Compile(AccountData{Account: Account{ID: "a"}})
	s := NewSnapshot(1, map[string]*AccountState{"a": off}, nil)
	if s.DecisionLogged() {
		t.Fatal("logged with no account on")
	}
	s = s.Apply(2, map[string]*AccountState{"a": on}, nil)
	if !s.DecisionLogged() {
		t.Fatal("not logged after turning it on")
	}
	if s.WithTokens(nil).DecisionLogged() != true {
		t.Fatal("WithTokens lost the count")
	}
	if s.Apply(3, map[string]*AccountState{"a": nil}, nil).DecisionLogged() {
		t.Fatal("still logged after the account was deleted")
	}
	if s.Apply(3, map[string]*AccountState{"a": off}, nil).DecisionLogged() {
		t.Fatal("still logged after turning it off")
	}
}
