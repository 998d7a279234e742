package server

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
)

// settingsHistory records, from write answers, the value of
// agent_click_restricted that each committed revision left for one account.
type settingsHistory struct {
	mu     sync.Mutex
	writes map[uint64]bool // revision of an acme settings write -> value
	other  map[uint64]bool // revisions of commits to other accounts
}

// valueAt returns the value in force at revision rev: that of the last
// acme settings write at or before it.
func (h *settingsHistory) valueAt(rev uint64) (bool, bool) {
	best, found := uint64(0), false
	for r := range h.writes {
		if r <= rev && (!found || r > best) {
			best, found = r, true
		}
	}
	return h.writes[best], found
}

// answer is one decision as a reader saw it.
type answer struct {
	revision uint64
	reason   gatehousev1.Reason
	source   string
}

// TestStress_DecisionsMatchTheirRevision runs readers (CheckFeature,
// CheckFeatures, GetSessionPolicy) while writers toggle
// agent_click_restricted on the same account and write to another account.
// Every answer must be exactly what the settings committed at the revision
// it reports say: no torn or stale-labelled snapshot. Each reader's
// revisions never go backwards, and a writer's next decision sees its own
// write.
func TestStress_DecisionsMatchTheirRevision(t *testing.T) {
	t.Parallel()
	duration := 2 * time.Second
	if testing.Short() {
		duration = 300 * time.Millisecond
	}
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")
	sess := e.MustStartSession("acme")
	base := e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: false}, "agent_click_restricted")
	h := &settingsHistory{writes: map[uint64]bool{base.GetRevision(): false}, other: map[uint64]bool{}}
	click := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/"}

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	callCtx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	fail := func(format string, args ...any) {
		select {
		case errs <- fmt.Errorf(format, args...):
		default:
		}
	}
	var amu sync.Mutex
	var answers []answer
	record := func(a ...answer) {
		amu.Lock()
		answers = append(answers, a...)
		amu.Unlock()
	}

	for w := range 2 {
		wg.Go(func() {
			v := w == 0
			for ctx.Err() == nil {
				v = !v
				resp, err := e.admin.UpdateLiveGuideSettings(callCtx, &gatehousev1.UpdateLiveGuideSettingsRequest{
					Settings:   &gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: v},
					UpdateMask: mask("agent_click_restricted"),
				})
				if err != nil {
					fail("writer %d: %v", w, err)
					return
				}
				rev := resp.GetSettings().GetRevision()
				if resp.GetSettings().GetAgentClickRestricted() != v {
					fail("writer %d: wrote %v, answer says %v", w, v, resp.GetSettings().GetAgentClickRestricted())
				}
				h.mu.Lock()
				h.writes[rev] = v
				h.mu.Unlock()
				// Read-your-writes: the next decision is at this revision
				// or later.
				d, err := e.decide.CheckFeature(callCtx, click)
				if err != nil {
					fail("writer %d check: %v", w, err)
					return
				}
				if d.GetRevision() < rev {
					fail("writer %d: wrote revision %d, next decision at %d", w, rev, d.GetRevision())
				}
				record(answer{d.GetRevision(), d.GetDecision().GetReason(), "writer check"})
			}
		})
	}
	wg.Go(func() {
		v := false
		for ctx.Err() == nil {
			v = !v
			resp, err := e.admin.UpdateLiveGuideSettings(callCtx, &gatehousev1.UpdateLiveGuideSettingsRequest{
				Settings:   &gatehousev1.LiveGuideSettings{AccountId: "other", AgentClickRestricted: v, Chat: v},
				UpdateMask: mask("agent_click_restricted", "chat"),
			})
			if err != nil {
				fail("other writer: %v", err)
				return
			}
			h.mu.Lock()
			h.other[resp.GetSettings().GetRevision()] = true
			h.mu.Unlock()
		}
	})
	for r := range 3 {
		wg.Go(func() {
			var last uint64
			for i := 0; ctx.Err() == nil; i++ {
				var got []answer
				switch (i + r) % 3 {
				case 0:
					d, err := e.decide.CheckFeature(callCtx, click)
					if err != nil {
						fail("reader %d: %v", r, err)
						return
					}
					got = append(got, answer{d.GetRevision(), d.GetDecision().GetReason(), "CheckFeature"})
				case 1:
					b, err := e.decide.CheckFeatures(callCtx, &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{click, click, click}})
					if err != nil {
						fail("reader %d: %v", r, err)
						return
					}
					for _, d := range b.GetResults() {
						if d.GetRevision() != b.GetRevision() {
							fail("reader %d: batch at %d holds a result at %d", r, b.GetRevision(), d.GetRevision())
						}
						got = append(got, answer{d.GetRevision(), d.GetDecision().GetReason(), "CheckFeatures"})
					}
				case 2:
					p, err := e.decide.GetSessionPolicy(callCtx, &gatehousev1.GetSessionPolicyRequest{SessionId: sess.GetId(), Actor: agent("alice")})
					if err != nil {
						fail("reader %d: %v", r, err)
						return
					}
					reason := gatehousev1.Reason_REASON_ALLOWED
					if p.GetPolicy().GetSettings().GetAgentClickRestricted() {
						reason = gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED
					}
					got = append(got, answer{p.GetPolicy().GetRevision(), reason, "GetSessionPolicy"})
				}
				for _, a := range got {
					if a.revision < last {
						fail("reader %d: revision went back from %d to %d", r, last, a.revision)
					}
					last = a.revision
				}
				record(got...)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	// Every commit after the setup is one of the recorded writes, so the
	// history is complete.
	for r := base.GetRevision(); r <= e.store.Revision(); r++ {
		_, acme := h.writes[r]
		if !acme && !h.other[r] {
			t.Fatalf("revision %d was committed by nobody the test knows", r)
		}
	}
	restricted, allowed := 0, 0
	sort.Slice(answers, func(i, j int) bool { return answers[i].revision < answers[j].revision })
	for _, a := range answers {
		v, ok := h.valueAt(a.revision)
		if !ok {
			t.Fatalf("%s answered at revision %d, before the test's first write", a.source, a.revision)
		}
		want := gatehousev1.Reason_REASON_ALLOWED
		if v {
			want = gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED
			restricted++
		} else {
			allowed++
		}
		if a.reason != want {
			t.Fatalf("%s at revision %d answered %v; the settings committed at that revision say %v", a.source, a.revision, a.reason, want)
		}
	}
	t.Logf("%d answers (%d restricted, %d allowed) over %d acme writes and %d other writes", len(answers), restricted, allowed, len(h.writes), len(h.other))
	if !testing.Short() && (restricted == 0 || allowed == 0 || len(h.writes) < 10) {
		t.Errorf("too little interleaving to mean anything: %d restricted, %d allowed answers, %d writes", restricted, allowed, len(h.writes))
	}
}
