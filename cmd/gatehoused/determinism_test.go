//go:build unix

package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/protobuf/proto"
)

// sameStoreStarts is how many times TestE2E_SameStoreSameDecisions starts
// the daemon; SAME_STORE_STARTS overrides it (fewer on a slow machine, more
// for a longer check).
func sameStoreStarts(t *testing.T) int {
	t.Helper()
	if v := os.Getenv("SAME_STORE_STARTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			t.Fatalf("SAME_STORE_STARTS=%q: want a number of at least 2", v)
		}
		return n
	}
	return 20
}

// TestE2E_SameStoreSameDecisions starts the real daemon again and again,
// each time on a fresh copy of one store, and asks the same few thousand
// questions (every session kind and state, every role, every feature,
// allowlisted and foreign URLs, masked and blocked elements, frames) plus
// every session policy. Every start must give exactly the same answers:
// nothing in a decision depends on map order, start-up timing or anything
// but the stored data.
func TestE2E_SameStoreSameDecisions(t *testing.T) {
	t.Parallel()
	binary(t)
	starts := sameStoreStarts(t)
	src := t.TempDir()
	ctx := testContext(t)
	d := start(t, nil, loopbackArgs(src, "--demo")...)
	c := dial(t, d.addr)
	sessions := map[string]*gatehousev1.Session{}
	startSession := func(req *gatehousev1.StartSessionRequest) *gatehousev1.Session {
		t.Helper()
		resp, err := c.sessions.StartSession(ctx, req)
		if err != nil {
			t.Fatalf("StartSession(%v): %v", req, err)
		}
		sessions[resp.GetSession().GetId()] = resp.GetSession()
		return resp.GetSession()
	}
	live := startSession(&gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
	ended := startSession(&gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
	if _, err := c.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: ended.GetId()}); err != nil {
		t.Fatal(err)
	}
	support := startSession(&gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: "bob", CustomerId: "cust-2", PortalId: "helpdesk-default"})
	startSession(&gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: "alice", CustomerId: "cust-3", PortalId: "helpdesk-default"})
	if _, err := c.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: support.GetId(), SpecialistId: "spec", DisplayName: "Spec"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "demo", AgentInputRestricted: true, Chat: true}, UpdateMask: mask("agent_input_restricted", "chat")}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"shop.example.com/checkout/", "*.example.org", "intranet:8443", "192.168.0.10"} {
		if _, err := c.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "demo", Entry: &gatehousev1.AllowlistEntry{Pattern: p}}); err != nil {
			t.Fatal(err)
		}
	}
	d.stop()
	_ = c.conn.Close()
	_ = live

	ids := make([]string, 0, len(sessions))
	for id := range sessions {
		ids = append(ids, id)
	}
	actors := []*gatehousev1.Actor{agent("alice"), agent("bob"), customer("cust-1"), customer("cust-2"), customer("cust-3"),
		{Role: gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST, Id: "spec"}, agent("mallory")}
	urls := []string{"https://www.example.com/help", "https://shop.example.com/checkout/pay", "https://shop.example.com/checkout/../../admin",
		"https://a.example.org/", "http://intranet:8443/x", "https://192.168.0.10/", "https://example.com.evil.net/", "javascript:alert(1)",
		"https://www.example.com/transfer", "http://[::1"}
	elements := []*gatehousev1.Element{nil,
		{Tag: "input", Attributes: map[string]string{"name": "cvv"}},
		{Tag: "button", Classes: []string{"transfer"}, Ancestors: []*gatehousev1.ElementNode{{Tag: "html"}, {Tag: "body"}}},
		{Tag: "div", Id: "card-number"},
	}
	var features []gatehousev1.Feature
	for f := range gatehousev1.Feature_name {
		if f != 0 {
			features = append(features, gatehousev1.Feature(f))
		}
	}
	// Sorted, so that the questions do not depend on map order either.
	slices.Sort(ids)
	slices.Sort(features)
	rng := rand.New(rand.NewPCG(2024, 11))
	var batches [][]*gatehousev1.CheckFeatureRequest
	for range 3 {
		var b []*gatehousev1.CheckFeatureRequest
		for range 1000 {
			b = append(b, &gatehousev1.CheckFeatureRequest{
				SessionId: ids[rng.IntN(len(ids))], Actor: actors[rng.IntN(len(actors))], Feature: features[rng.IntN(len(features))],
				Url: urls[rng.IntN(len(urls))], Frame: gatehousev1.Frame(rng.IntN(3)), Element: elements[rng.IntN(len(elements))],
			})
		}
		batches = append(batches, b)
	}

	data, err := os.ReadFile(filepath.Join(src, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	var first []proto.Message
	for i := range starts {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "gatehouse.db"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		d := start(t, nil, loopbackArgs(dir)...)
		c := dial(t, d.addr)
		var answers []proto.Message
		for _, b := range batches {
			resp, err := c.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: b})
			if err != nil {
				t.Fatalf("start %d: %v", i, err)
			}
			answers = append(answers, resp)
		}
		for _, id := range ids {
			for _, a := range actors {
				resp, err := c.decide.GetSessionPolicy(ctx, &gatehousev1.GetSessionPolicyRequest{SessionId: id, Actor: a, Language: "fr-CA"})
				if err != nil {
					answers = append(answers, &gatehousev1.GetSessionPolicyResponse{}) // refusals must repeat too
					continue
				}
				answers = append(answers, resp)
			}
		}
		_ = c.conn.Close()
		d.stop()
		if i == 0 {
			first = answers
			reasons := map[gatehousev1.Reason]bool{}
			for _, a := range answers[:len(batches)] {
				for _, r := range a.(*gatehousev1.CheckFeaturesResponse).GetResults() {
					reasons[r.GetDecision().GetReason()] = true
				}
			}
			if len(reasons) < 10 {
				t.Errorf("the questions reach only %d reasons: %v", len(reasons), reasons)
			}
			continue
		}
		for j := range answers {
			if !proto.Equal(answers[j], first[j]) {
				t.Fatalf("start %d answered differently from start 0 (answer %d):\n%v\nvs\n%v", i, j, answers[j], first[j])
			}
		}
	}
	t.Logf("%d starts gave identical answers to %d checks and %d session policies", starts, 3000, len(ids)*len(actors))
}
