package server

import (
	"context"
	"fmt"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/observe"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/selector"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"google.golang.org/protobuf/proto"
)

// decisionService implements gatehousev1.DecisionServiceServer.
type decisionService struct {
	gatehousev1.UnimplementedDecisionServiceServer
	s *Server
}

// maxChecks bounds one CheckFeatures call.
const maxChecks = 1000

// validateCheck validates one check, naming fields under prefix, and fills q.
func validateCheck(v *violations, prefix string, req *gatehousev1.CheckFeatureRequest, q *policy.Query) {
	v.checkID(prefix+"session_id", req.GetSessionId(), false)
	actor := req.GetActor()
	validateActor(v, prefix, actor)
	f := policy.Feature(req.GetFeature())
	switch {
	case req.GetFeature() == gatehousev1.Feature_FEATURE_UNSPECIFIED:
		v.add(prefix+"feature", "is required (a FEATURE_… value)")
	case !f.Valid():
		v.add(prefix+"feature", "must be a known feature")
	}
	if fr := req.GetFrame(); fr < gatehousev1.Frame_FRAME_UNSPECIFIED || fr > gatehousev1.Frame_FRAME_IFRAME {
		v.add(prefix+"frame", "must be FRAME_TOP_LEVEL or FRAME_IFRAME")
	}
	switch u := req.GetUrl(); {
	case len(u) > maxURLLength:
		v.add(prefix+"url", "must be at most %d bytes", maxURLLength)
	case u == "" && f.NeedsURL():
		v.add(prefix+"url", "is required for %s", req.GetFeature())
	}
	*q = policy.Query{
		SessionID: req.GetSessionId(),
		Role:      policy.Role(actor.GetRole()),
		ActorID:   actor.GetId(),
		Feature:   f,
		URL:       req.GetUrl(),
		Frame:     policy.Frame(req.GetFrame()),
	}
	if el := req.GetElement(); el != nil {
		validateElement(v, prefix+"element", el)
		q.Element = &selector.Element{Tag: el.GetTag(), ID: el.GetId(), Classes: el.GetClasses(), Attributes: el.GetAttributes()}
		if n := len(el.GetAncestors()); n > 0 {
			q.Ancestors = make([]selector.Element, n)
			for i, a := range el.GetAncestors() {
				q.Ancestors[i] = selector.Element{Tag: a.GetTag(), ID: a.GetId(), Classes: a.GetClasses(), Attributes: a.GetAttributes()}
			}
		}
	}
}

// validateActor checks the actor of a decision or a session policy,
// naming fields under prefix.
func validateActor(v *violations, prefix string, actor *gatehousev1.Actor) {
	switch {
	case actor == nil:
		v.add(prefix+"actor", "is required")
		return
	case actor.GetRole() == gatehousev1.Role_ROLE_UNSPECIFIED:
		v.add(prefix+"actor.role", "is required (ROLE_AGENT, ROLE_CUSTOMER or ROLE_EXTERNAL_SPECIALIST)")
	case actor.GetRole() < gatehousev1.Role_ROLE_AGENT || actor.GetRole() > gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST:
		v.add(prefix+"actor.role", "must be ROLE_AGENT, ROLE_CUSTOMER or ROLE_EXTERNAL_SPECIALIST")
	}
	v.checkID(prefix+"actor.id", actor.GetId(), false)
}

// Bounds of an element descriptor.
const (
	maxAncestors  = 256
	maxClasses    = 64
	maxAttributes = 64
	maxNameLen    = 256
	maxValueLen   = 4096
)

// validateElement bounds the size of an element descriptor, its parts and
// its whole (MaxElementBytes), so that no request can make a decision
// arbitrarily expensive.
func validateElement(v *violations, field string, el *gatehousev1.Element) {
	if len(el.GetAncestors()) > maxAncestors {
		v.add(field+".ancestors", "must hold at most %d elements", maxAncestors)
		return
	}
	validateNode(v, field, -1, el.GetTag(), el.GetId(), el.GetClasses(), el.GetAttributes())
	bound := elementSizeBound(el.GetTag(), el.GetId(), el.GetClasses(), el.GetAttributes())
	for i, a := range el.GetAncestors() {
		validateNode(v, field, i, a.GetTag(), a.GetId(), a.GetClasses(), a.GetAttributes())
		bound += elementSizeBound(a.GetTag(), a.GetId(), a.GetClasses(), a.GetAttributes())
	}
	// The codec refuses an element over MaxElementBytes from its length
	// on the wire; this catches one built in process. The bound is cheap
	// and above the encoded size, which is computed only past it.
	if bound > MaxElementBytes {
		if n := proto.Size(el); n > MaxElementBytes {
			v.add(field, "the element is %d bytes encoded; it may be at most %d bytes", n, MaxElementBytes)
		}
	}
}

// validateNode checks the element (ancestor < 0) or one of its ancestors.
// Field names are built only for a violation: a valid element, the common
// case, costs no formatting.
func validateNode(v *violations, field string, ancestor int, tag, id string, classes []string, attrs map[string]string) {
	name := func(sub string) string {
		if ancestor < 0 {
			return field + "." + sub
		}
		return fmt.Sprintf("%s.ancestors[%d].%s", field, ancestor, sub)
	}
	switch {
	case len(tag) > maxNameLen:
		v.add(name("tag"), "must be at most %d bytes", maxNameLen)
	case len(id) > maxValueLen:
		v.add(name("id"), "must be at most %d bytes", maxValueLen)
	case len(classes) > maxClasses:
		v.add(name("classes"), "must hold at most %d classes", maxClasses)
	case len(attrs) > maxAttributes:
		v.add(name("attributes"), "must hold at most %d attributes", maxAttributes)
	}
	for _, c := range classes {
		if len(c) > maxNameLen {
			v.add(name("classes"), "class names must be at most %d bytes", maxNameLen)
			break
		}
	}
	for k, val := range attrs {
		if len(k) > maxNameLen || len(val) > maxValueLen {
			v.add(name("attributes"), "names must be at most %d bytes and values %d", maxNameLen, maxValueLen)
			break
		}
	}
}

// snapshotAt returns the snapshot a call reads: the one its caller was
// authenticated against (callSnapshot), unless the caller asked for a
// later revision. Then it waits for a snapshot at minRev and checks the
// caller's credential again in it (credentialErr), so that the caller and
// the answer still come from one snapshot. The wait is bounded by the
// call's deadline, or by Limits.DecisionTimeout without one. Waiting is the
// only way a decision can take long, so the default deadline is given
// here, where it is needed, rather than to every call (a timer and a
// context each).
//
// Every call that answers from the snapshot reads it here, so this is
// where a snapshot older than the staleness bound is refused (staleErr),
// before and after any wait.
func (s *Server) snapshotAt(ctx context.Context, minRev uint64) (*policy.Snapshot, error) {
	if err := s.staleErr(); err != nil {
		return nil, err
	}
	if snap := s.callSnapshot(ctx); snap.Revision() >= minRev {
		return snap, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.decisionTimeout)
		defer cancel()
	}
	start := time.Now()
	wctx, wait := s.innerSpan(ctx, "snapshot.wait")
	snap, err := s.snaps.WaitFor(wctx, minRev)
	observe.EndInner(wait, err)
	addIdleWait(ctx, time.Since(start))
	if err != nil {
		return nil, err
	}
	if err := s.staleErr(); err != nil {
		return nil, err
	}
	if c, ok := auth.FromContext(ctx); ok {
		if err := credentialErr(snap, c); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// decide answers the checks qs, filling decs, at one snapshot: the call's
// (snapshotAt), which also authenticated the caller. The caller's scope is
// checked for every session before any check is answered. A batch
// (CheckFeatures, even of one check) shares one privacy work budget
// (policy.MaxBatchPrivacyWork), so that it costs at most a few costly
// decisions, not a thousand, observes the caller's deadline between
// checks, and names the check an error is about. Every answer is counted
// and offered to the decision log.
func (s *Server) decide(ctx context.Context, minRev uint64, qs []policy.Query, decs []policy.Decision, batch bool) (*policy.Snapshot, error) {
	snap, err := s.snapshotAt(ctx, minRev)
	if err != nil {
		return nil, err
	}
	for i := range qs {
		if err := snapshotSessionAccess(ctx, snap, qs[i].SessionID); err != nil {
			return nil, err
		}
	}
	var work *policy.BatchWork
	if batch {
		work = policy.NewBatchWork()
	}
	for i := range qs {
		var dec policy.Decision
		if batch {
			if err = ctx.Err(); err == nil {
				dec, err = snap.CheckBatched(ctx, &qs[i], work)
			}
		} else {
			dec, err = snap.CheckContext(ctx, &qs[i])
		}
		if err != nil {
			err = service.SessionErr(err, qs[i].SessionID)
			if batch {
				err = errs.Prefix(err, fmt.Sprintf("checks[%d]: ", i))
			}
			return nil, err
		}
		s.obs.CountDecision(qs[i].Feature, dec)
		s.decisions.Record(ctx, snap, &qs[i], dec)
		decs[i] = dec
	}
	if batch {
		s.obs.CountBatchWorkLimit(work.Limited())
	}
	return snap, nil
}

func (d *decisionService) CheckFeature(ctx context.Context, req *gatehousev1.CheckFeatureRequest) (*gatehousev1.CheckFeatureResponse, error) {
	var v violations
	var q [1]policy.Query
	validateCheck(&v, "", req, &q[0])
	if err := v.err(); err != nil {
		return nil, err
	}
	var dec [1]policy.Decision
	snap, err := d.s.decide(ctx, req.GetMinRevision(), q[:], dec[:], false)
	if err != nil {
		return nil, err
	}
	if d.s.tracing {
		observe.TraceDecision(ctx, q[0].Feature, dec[0], snap.Revision())
	}
	return decisionToProto(dec[0], snap.Revision()), nil
}

func (d *decisionService) CheckFeatures(ctx context.Context, req *gatehousev1.CheckFeaturesRequest) (*gatehousev1.CheckFeaturesResponse, error) {
	var v violations
	checks := req.GetChecks()
	switch {
	case len(checks) == 0:
		v.add("checks", "is required (at least one check)")
	case len(checks) > maxChecks:
		v.add("checks", "must hold at most %d checks, got %d", maxChecks, len(checks))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	qs := make([]policy.Query, len(checks))
	var minRev uint64
	for i, c := range checks {
		// Field names are prefixed only for a check with violations: a
		// valid batch, the common case, formats no field name.
		var cv violations
		validateCheck(&cv, "", c, &qs[i])
		if len(cv) > 0 {
			prefix := fmt.Sprintf("checks[%d].", i)
			for j := range cv {
				cv[j].Field = prefix + cv[j].Field
			}
			v = append(v, cv...)
		}
		minRev = max(minRev, c.GetMinRevision())
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	// One snapshot answers every check, so the answers are consistent with
	// each other.
	decs := make([]policy.Decision, len(qs))
	snap, err := d.s.decide(ctx, minRev, qs, decs, true)
	if err != nil {
		return nil, err
	}
	resp := &gatehousev1.CheckFeaturesResponse{Results: make([]*gatehousev1.CheckFeatureResponse, len(qs)), Revision: snap.Revision()}
	for i := range decs {
		resp.Results[i] = decisionToProto(decs[i], snap.Revision())
	}
	if d.s.tracing {
		observe.TraceChecks(ctx, len(qs), snap.Revision())
	}
	return resp, nil
}
