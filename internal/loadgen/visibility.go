package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// VisibilityResult is how long a write acknowledged by one replica takes
// to decide the next check on another (both on one shared store).
type VisibilityResult struct {
	Account string
	// Write is the write's latency on replica A (send to acknowledgement).
	Write Histogram
	// FromAck is the time from A's acknowledgement until B answered a
	// check with the write's revision as min_revision (B waits until its
	// snapshot has caught up); FromSend the same from the moment the
	// write was sent. The commit lies between the two.
	FromAck  Histogram
	FromSend Histogram
	// FromCommit is the same from the moment the commit was observed in
	// the store itself (CommitTime), when MeasureVisibility has one.
	FromCommit Histogram
	// RoundTrip is the same check on B sent again right after (its
	// snapshot has the revision): the part of FromAck that is the call
	// itself, not the wait.
	RoundTrip Histogram
}

// CommitTime returns when the commit of revision rev was observed in the
// store (for etcd: when a watch of the store's head record delivered
// it), waiting for it until ctx ends.
type CommitTime func(ctx context.Context, rev uint64) (time.Time, error)

// VisibilityProbe picks the probe MeasureVisibility toggles: a Live Guide
// session of account (any account when empty) whose agent may click on
// an allowlisted page, so that agent_click_restricted decides the check.
func VisibilityProbe(m *Manifest, account string) (Probe, bool) {
	for _, p := range m.Probes {
		if !p.Support && len(p.AllowedURLs) > 0 && !p.ClickRestricted && (account == "" || p.AccountID == account) {
			return p, true
		}
	}
	return Probe{}, false
}

// MeasureVisibility writes n times through replica a (toggling
// agent_click_restricted on p's account, which ends as it was) and after
// each write asks replica b whether p's agent may click on an allowlisted
// page, with the write's revision as min_revision. Every answer is
// checked: the write must echo the value written at a new revision, and
// b's decision must be the one the new value gives (AGENT_CLICK_RESTRICTED
// or allowed) at that revision or later; the first wrong answer or failed
// call ends the measurement with a *MismatchError or a *CallError. wait
// bounds each check on b. committed, when not nil, times each commit
// as the store saw it (VisibilityResult.FromCommit).
func MeasureVisibility(ctx context.Context, a, b *grpc.ClientConn, p Probe, n int, wait time.Duration, committed CommitTime) (VisibilityResult, error) {
	admin := gatehousev1.NewAdminServiceClient(a)
	decide := gatehousev1.NewDecisionServiceClient(b)
	r := VisibilityResult{Account: p.AccountID}
	mask := &fieldmaskpb.FieldMask{Paths: []string{"agent_click_restricted"}}
	// The generator's expectation for the agent's click, with the switch
	// as written.
	expect := func(restricted bool) Expect {
		q := p
		q.ClickRestricted = restricted
		return q.cobrowseExpect(true, policy.FeatureClick, false, nil)
	}
	value := false // VisibilityProbe picks an account with the switch off
	var last uint64
	write := func(ctx context.Context, v bool) (uint64, error) {
		req := &gatehousev1.UpdateLiveGuideSettingsRequest{
			Settings:   &gatehousev1.LiveGuideSettings{AccountId: p.AccountID, AgentClickRestricted: v},
			UpdateMask: mask,
		}
		resp, err := admin.UpdateLiveGuideSettings(ctx, req)
		if err != nil {
			return 0, &CallError{Method: "UpdateLiveGuideSettings", Request: req, Err: err}
		}
		got := resp.GetSettings()
		if got.GetAgentClickRestricted() != v || got.GetRevision() <= last {
			return 0, &CallError{Method: "UpdateLiveGuideSettings", Request: req,
				Err: fmt.Errorf("answered agent_click_restricted=%t at revision %d, want %t at a revision after %d", got.GetAgentClickRestricted(), got.GetRevision(), v, last)}
		}
		value, last = v, got.GetRevision()
		return last, nil
	}
	defer func() {
		if value {
			// Leave the account as it was, also when the run ends early.
			_, _ = write(context.WithoutCancel(ctx), false)
		}
	}()
	check := func(ctx context.Context, rev uint64) error {
		req := &gatehousev1.CheckFeatureRequest{
			SessionId: p.SessionID, Actor: &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: p.RepresentativeID},
			Feature: gatehousev1.Feature_FEATURE_CLICK, Url: p.AllowedURLs[0], Element: clickTarget.ToProto(), MinRevision: rev,
		}
		cctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		got, err := decide.CheckFeature(cctx, req)
		if err != nil {
			return &CallError{Method: "CheckFeature (replica B)", Request: req, Err: err}
		}
		if got.GetRevision() < rev {
			return &CallError{Method: "CheckFeature (replica B)", Request: req, Err: fmt.Errorf("answered at revision %d, before the write's %d", got.GetRevision(), rev)}
		}
		if err := Verify(req, expect(value), got); err != nil {
			var mm *MismatchError
			if errors.As(err, &mm) {
				mm.Method = "CheckFeature (replica B)"
			}
			return err
		}
		return nil
	}
	n += n % 2 // an even number of toggles ends where it started
	for range n {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		t0 := time.Now()
		rev, err := write(ctx, !value)
		if err != nil {
			return r, err
		}
		t1 := time.Now()
		if err := check(ctx, rev); err != nil {
			return r, err
		}
		t2 := time.Now()
		if err := check(ctx, rev); err != nil {
			return r, err
		}
		rt := time.Since(t2)
		if committed != nil {
			cctx, cancel := context.WithTimeout(ctx, wait)
			at, err := committed(cctx, rev)
			cancel()
			if err != nil {
				return r, fmt.Errorf("the commit of revision %d was not observed in the store: %w", rev, err)
			}
			r.FromCommit.Record(t2.Sub(at))
		}
		r.Write.Record(t1.Sub(t0))
		r.FromAck.Record(t2.Sub(t1))
		r.FromSend.Record(t2.Sub(t0))
		r.RoundTrip.Record(rt)
	}
	return r, nil
}

// MeasureConcurrentSettings runs MeasureSettingsUpdates on each of
// accounts at once (one writer per account, n writes each) and returns
// the writers' results merged, and how long they took together.
func MeasureConcurrentSettings(ctx context.Context, conn *grpc.ClientConn, accounts []string, n int, budget time.Duration) (WriteResult, time.Duration) {
	results := make([]WriteResult, len(accounts))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, a := range accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = MeasureSettingsUpdates(ctx, conn, a, n, budget)
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	out := WriteResult{Name: fmt.Sprintf("UpdateLiveGuideSettings x%d writers", len(accounts)), Account: fmt.Sprintf("%d accounts", len(accounts))}
	for i := range results {
		out.Latency.Merge(&results[i].Latency)
		out.Errors += results[i].Errors
		if out.FirstError == nil {
			out.FirstError = results[i].FirstError
		}
	}
	return out, took
}
