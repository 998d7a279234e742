package policy

import (
	"errors"
	"testing"
)

func supportSnapshot(top, sub Functions, rep Functions) *Snapshot {
	acct := Compile(AccountData{
		Account: Account{ID: "acme"},
		Portals: []Portal{
			{ID: "top", Name: "Top", Functions: top},
			{ID: "sub", ParentID: "top", Name: "Sub", Functions: sub},
		},
		Teams: []Team{{ID: "t", PortalID: "top"}, {ID: "t2", ParentID: "t"}},
		Representatives: []Representative{
			{ID: "alice", TeamID: "t2", Functions: rep},
		},
	})
	sess := &Session{ID: "s", AccountID: "acme", Kind: SessionKindSupport, State: SessionStateActive,
		RepresentativeID: "alice", CustomerID: "cust", PortalID: "sub", Specialists: []Specialist{{ID: "spec"}}}
	return NewSnapshot(1, map[string]*AccountState{"acme": acct}, map[string]*Session{"s": sess})
}

func TestCheck_SupportFunctions(t *testing.T) {
	t.Parallel()
	all := Functions(1<<NumFunctions - 1)
	noSend := all.With(FunctionSendFiles, false)
	for _, tc := range []struct {
		name          string
		top, sub, rep Functions
		role          Role
		actor         string
		want          Decision
	}{
		{"all on", all, all, all, RoleAgent, "alice", Decision{Allowed: true, Reason: ReasonAllowed}},
		{"top portal off", noSend, all, all, RoleAgent, "alice", Decision{Reason: ReasonPortalFunctionDisabled, Rule: "top"}},
		{"subportal off", all, noSend, all, RoleAgent, "alice", Decision{Reason: ReasonPortalFunctionDisabled, Rule: "sub"}},
		{"both off names the top", noSend, noSend, all, RoleAgent, "alice", Decision{Reason: ReasonPortalFunctionDisabled, Rule: "top"}},
		{"representative off", all, all, noSend, RoleAgent, "alice", Decision{Reason: ReasonRepresentativeFunctionDisabled, Rule: "alice"}},
		{"portal checked before representative", noSend, all, noSend, RoleAgent, "alice", Decision{Reason: ReasonPortalFunctionDisabled, Rule: "top"}},
		{"customer gets the representative's answer", all, all, noSend, RoleCustomer, "cust", Decision{Reason: ReasonRepresentativeFunctionDisabled, Rule: "alice"}},
		{"specialist gets the representative's answer", all, all, all, RoleExternalSpecialist, "spec", Decision{Allowed: true, Reason: ReasonAllowed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := supportSnapshot(tc.top, tc.sub, tc.rep)
			got, err := snap.Check(&Query{SessionID: "s", Role: tc.role, ActorID: tc.actor, Feature: FeatureSendFiles})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	snap := supportSnapshot(all, noSend, all)
	as := snap.Account("acme")
	if fs := as.EffectiveFunctions("sub", "alice"); fs.Has(FunctionSendFiles) || !fs.Has(FunctionAnnotations) {
		t.Fatalf("effective = %b", fs)
	}
}

func TestChains(t *testing.T) {
	t.Parallel()
	portals := map[string]*Portal{
		"top": {ID: "top"}, "sub": {ID: "sub", ParentID: "top"}, "leaf": {ID: "leaf", ParentID: "sub"},
		"loop1": {ID: "loop1", ParentID: "loop2"}, "loop2": {ID: "loop2", ParentID: "loop1"},
		"orphan": {ID: "orphan", ParentID: "gone"},
	}
	lookup := func(id string) (*Portal, bool) { p, ok := portals[id]; return p, ok }
	chain, err := PortalChain("leaf", lookup)
	if err != nil || len(chain) != 3 || chain[0].ID != "leaf" || chain[2].ID != "top" {
		t.Fatalf("chain = %v, %v", chain, err)
	}
	for _, id := range []string{"loop1", "orphan"} {
		if _, err := PortalChain(id, lookup); !errors.Is(err, ErrBrokenChain) {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if !CanServe("top", chain) || !CanServe("leaf", chain) || CanServe("other", chain) || CanServe("", chain) {
		t.Fatal("CanServe")
	}
	teams := map[string]*Team{"a": {ID: "a", PortalID: "top"}, "b": {ID: "b", ParentID: "a"}, "c": {ID: "c", ParentID: "b", PortalID: "sub"}, "d": {ID: "d"}}
	tl := func(id string) (*Team, bool) { t, ok := teams[id]; return t, ok }
	for id, want := range map[string]string{"a": "top", "b": "top", "c": "sub", "d": ""} {
		if got, err := TeamPortal(id, tl); err != nil || got != want {
			t.Errorf("TeamPortal(%s) = %q, %v; want %q", id, got, err, want)
		}
	}
	if _, err := TeamPortal("missing", tl); !errors.Is(err, ErrBrokenChain) {
		t.Fatal("missing team")
	}
	// A portal with a broken chain has every function disabled.
	as := Compile(AccountData{Account: Account{ID: "x"}, Portals: []Portal{{ID: "orphan", ParentID: "gone", Functions: 1<<NumFunctions - 1}},
		Representatives: []Representative{{ID: "r", Functions: 1<<NumFunctions - 1}}})
	if as.EffectiveFunctions("orphan", "r") != 0 || len(as.Problems) == 0 {
		t.Fatalf("broken chain: %b %v", as.EffectiveFunctions("orphan", "r"), as.Problems)
	}
}

// TestFeatureFunctionNeverAliases checks Feature.Function and Valid over a
// wide range: only the twelve declared support features map to functions
// (no number 256 or 65536 above one), and Functions ignores values that
// are not functions.
func TestFeatureFunctionNeverAliases(t *testing.T) {
	check := func(f Feature) {
		fn, ok := f.Function()
		want := f >= FeatureCustomerScreenSharing && f <= FeatureInviteExternalSpecialist
		if ok != want || (ok && Feature(fn)+FeatureFunctionBase != f) {
			t.Fatalf("Feature(%d).Function() = %d, %v; want ok=%v", f, fn, ok, want)
		}
		if f.Valid() != (want || f.IsCobrowse()) {
			t.Fatalf("Feature(%d).Valid() = %v", f, f.Valid())
		}
	}
	for f := Feature(-70000); f < 70000; f++ {
		check(f)
	}
	for _, f := range []Feature{1 << 30, -1 << 31, 1<<31 - 1, 1 << 40, -1 << 40} {
		check(f)
	}
	all := Functions(1<<NumFunctions - 1)
	for fn := NumFunctions; fn != 0; fn++ {
		if all.Has(fn) || all.With(fn, true) != all {
			t.Fatalf("Functions: value %d is not a function", fn)
		}
	}
}
