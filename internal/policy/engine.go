package policy

import (
	"context"
	"errors"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/selector"
	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
)

// ErrSessionNotFound is returned by Check when the snapshot does not know the
// session (or its account).
var ErrSessionNotFound = errors.New("session not found")

// Query is one question: may this actor use this feature in this session?
type Query struct {
	SessionID string
	Role      Role
	ActorID   string
	Feature   Feature
	URL       string
	Frame     Frame
	// Element is the element acted on (nil when the caller sent none) and
	// Ancestors its ancestors, outermost first.
	Element   *selector.Element
	Ancestors []selector.Element

	// Hypothetical, when set, is the session asked about instead of the
	// snapshot's session SessionID: a session that is not started (a
	// decision test). Its account's state in the snapshot decides.
	Hypothetical *Session

	// work is the privacy work budget of the decision when it draws on a
	// batch's (see CheckBatched); nil: MaxPrivacyWork of its own.
	work *selector.Budget
}

// MaxPrivacyWork bounds the work of the privacy rules for one decision, in
// the units of selector.Budget (about one per simple selector tried on an
// element and one per byte of attribute value tested). A decision that
// would need more is answered with the protective denial (see
// RulePrivacyWorkLimit) instead of being evaluated further. At this bound a
// decision costs well under a millisecond of CPU (BenchmarkPrivacyWorstCase).
const MaxPrivacyWork = 1 << 18

// RulePrivacyWorkLimit is the Decision.Rule of a CLICK, VIEW_ELEMENT or TYPE
// denied because its element was too costly to evaluate against the
// account's privacy rules (more than MaxPrivacyWork). Denying protects: an
// element a rule might cover is treated as covered.
const RulePrivacyWorkLimit = "privacy_work_limit"

// Check answers q. A denial is a Decision with Allowed false, not an error;
// the only errors are ErrSessionNotFound, for a session whose own record
// cannot be read from the store a *SessionUnreadableError and, for a
// session whose account cannot be read, an *UnreadableError. Evaluation order,
// first denial wins: session ended, actor not in session, feature not of
// this session kind, the page URL, role and account switches, privacy
// rules.
func (s *Snapshot) Check(q *Query) (Decision, error) {
	return s.CheckContext(context.Background(), q)
}

// CheckContext is Check observing ctx: while privacy rules are evaluated it
// stops when ctx is done and returns ctx.Err() instead of a decision.
func (s *Snapshot) CheckContext(ctx context.Context, q *Query) (Decision, error) {
	sess := q.Hypothetical
	if sess == nil {
		sess = s.sessions[q.SessionID]
	}
	if sess == nil {
		return Decision{}, s.missingSession(q.SessionID)
	}
	as := s.accounts[sess.AccountID]
	if as == nil {
		return Decision{}, s.missingAccount(sess.AccountID)
	}
	if sess.State != SessionStateActive {
		return deny(ReasonSessionEnded, ""), nil
	}
	if !sess.hasActor(q.Role, q.ActorID) {
		return deny(ReasonActorNotInSession, ""), nil
	}
	switch sess.Kind {
	case SessionKindLiveGuide:
		if !q.Feature.IsCobrowse() {
			return deny(ReasonFeatureNotInSessionKind, ""), nil
		}
		return as.checkCobrowse(ctx, q)
	case SessionKindSupport:
		fn, ok := q.Feature.Function()
		if !ok {
			return deny(ReasonFeatureNotInSessionKind, ""), nil
		}
		// A function is decided for the session's representative,
		// whoever asks.
		return as.checkFunction(sess, fn), nil
	default:
		return deny(ReasonFeatureNotInSessionKind, ""), nil
	}
}

func (s *Session) hasActor(role Role, id string) bool {
	switch role {
	case RoleAgent:
		return id == s.RepresentativeID
	case RoleCustomer:
		return id == s.CustomerID
	case RoleExternalSpecialist:
		return s.HasSpecialist(id)
	}
	return false
}

// checkCobrowse decides a Live Guide feature. External specialists are
// treated as agents.
func (as *AccountState) checkCobrowse(ctx context.Context, q *Query) (Decision, error) {
	agent := q.Role != RoleCustomer
	var u urlmatch.URL
	entry := ""
	if q.Feature.NeedsURL() {
		var err error
		u, err = urlmatch.Parse(q.URL)
		switch {
		case errors.Is(err, urlmatch.ErrNotPermitted):
			return deny(ReasonURLNotPermitted, ""), nil
		case err != nil:
			return deny(ReasonURLInvalid, ""), nil
		}
		id, ok, _ := as.AllowlistMatch(u)
		// A page off the allowlist may still appear in an iframe: the frame
		// may navigate and the customer may act in it, the agent may not.
		exempt := q.Frame == FrameIframe && (q.Feature == FeatureNavigate || !agent)
		if !ok && !exempt {
			return deny(ReasonDomainNotAllowlisted, "allowlist"), nil
		}
		entry = id
	}
	if d := as.checkSwitches(q.Feature, agent); !d.Allowed {
		return d, nil
	}
	if agent {
		d, err := as.checkPrivacy(ctx, q, u)
		if err != nil || !d.Allowed {
			return d, err
		}
	}
	d := allow()
	d.Rule = entry
	return d, nil
}

// checkSwitches applies the role and account switches.
func (as *AccountState) checkSwitches(f Feature, agent bool) Decision {
	st := &as.Settings
	switch f {
	case FeatureClick, FeatureScroll:
		if agent && st.AgentClickRestricted {
			return deny(ReasonAgentClickRestricted, "agent_click_restricted")
		}
	case FeatureType:
		if agent && st.AgentInputRestricted {
			return deny(ReasonAgentInputRestricted, "agent_input_restricted")
		}
	case FeatureClipboard:
		return roleSwitch(agent, st.ClipboardAgent, st.ClipboardCustomer, "clipboard_agent", "clipboard_customer")
	case FeatureVideo:
		return roleSwitch(agent, st.VideoAgent, st.VideoCustomer, "video_agent", "video_customer")
	case FeatureDocumentShare:
		return roleSwitch(agent, st.DocumentShareAgent, st.DocumentShareCustomer, "document_share_agent", "document_share_customer")
	case FeatureVoiceChat:
		return accountSwitch(st.VoiceChat, "voice_chat")
	case FeatureRecording:
		return accountSwitch(st.SessionRecording, "session_recording")
	case FeatureDocumentDownload:
		return accountSwitch(st.DocumentDownload, "document_download")
	case FeatureChat:
		return accountSwitch(st.Chat, "chat")
	}
	return allow()
}

// checkPrivacy applies the privacy rules to an agent's CLICK (BUTTON_BLOCK)
// and VIEW_ELEMENT or TYPE (DATA_MASK) on page u. When the caller names no
// element, any rule of the right kind on the page denies: privacy rules
// cannot be bypassed by leaving the element out.
//
// The selectors share one budget of MaxPrivacyWork; past it the answer is
// the protective denial. Before the first selector and every 8th, ctx is
// consulted, and a done
// ctx ends the evaluation with its error.
func (as *AccountState) checkPrivacy(ctx context.Context, q *Query, u urlmatch.URL) (Decision, error) {
	return as.evalPrivacy(ctx, q, u, privacyEval{budget: MaxPrivacyWork, prefilter: true})
}

// privacyEval says how evalPrivacy runs: with which budget and whether
// rules whose selector cannot match the element are passed over without
// being tried (tests compare both ways).
type privacyEval struct {
	budget    int
	prefilter bool
	// work, when set, receives the units spent.
	work *int
}

// evalPrivacy is checkPrivacy. With prefilter, a rule whose selector's
// rightmost compounds cannot match the element (selector.MayMatch: by tag,
// id and first class, read from the element's 64-bit signature, computed
// once per decision) is passed over before its page is even compared:
// the selector could not match, so the rule could not decide, and it costs
// no work units. Every rule that is tried is tried exactly as without the
// prefilter and charged the same, in the same order, so the answer is the
// same unless the evaluation without the prefilter would have run out of
// budget; a prefiltered evaluation never spends more.
func (as *AccountState) evalPrivacy(ctx context.Context, q *Query, u urlmatch.URL, ev privacyEval) (Decision, error) {
	var kind PrivacyRuleKind
	var reason Reason
	switch q.Feature {
	case FeatureClick:
		kind, reason = PrivacyRuleKindButtonBlock, ReasonElementBlocked
	case FeatureViewElement, FeatureType:
		kind, reason = PrivacyRuleKindDataMask, ReasonElementMasked
	default:
		return allow(), nil
	}
	// The first rule in id order that applies wins. Only rules of the
	// right kind that apply on every page or whose pattern host is the
	// page's host or one of its parent domains can apply (see ruleIndex).
	ix := &as.privacyIndex[kind]
	page := pageOf(u)
	best := -1
	own := selector.NewBudget(ev.budget)
	budget := &own
	if q.work != nil {
		budget = q.work // a batch's share (CheckBatched)
	}
	if ev.work != nil {
		start := budget.Left()
		defer func() { *ev.work = start - budget.Left() }()
	}
	prefilter := ev.prefilter && q.Element != nil
	var sig selector.Signature // computed when the first rule needs it
	haveSig := false
	var stop error // set when evaluation must end without an answer
	tried := 0
	try := func(rules []int32) {
		for _, i := range rules {
			if stop != nil || best >= 0 && int(i) >= best {
				return
			}
			r := &as.privacy[i]
			if prefilter && r.sel != nil {
				if !haveSig {
					sig, haveSig = selector.SignatureOf(q.Element), true
				}
				if !r.sel.MayMatch(sig) {
					continue
				}
			}
			if !r.matchLoose(&page) {
				continue
			}
			if q.Element == nil || r.sel == nil {
				best = int(i)
				return
			}
			if tried%8 == 0 {
				if err := ctx.Err(); err != nil {
					stop = err
					return
				}
			}
			tried++
			if r.sel.MatchBudget(*q.Element, q.Ancestors, budget) {
				best = int(i)
				return
			}
			if budget.Exhausted() {
				stop = errWorkLimit
				return
			}
		}
	}
	try(ix.anyPage)
	if len(ix.byHost) > 0 && u.Host != "" {
		h := u.Host
		if u.IsIP() {
			try(ix.byHost[h])
		} else {
			for end, labels := len(h), 1; ; labels++ {
				dot := strings.LastIndexByte(h[:end], '.')
				if urlmatch.HasLabels(ix.labels, labels) {
					try(ix.byHost[h[dot+1:]])
				}
				if dot < 0 {
					break
				}
				end = dot
			}
		}
	}
	switch {
	case stop == errWorkLimit:
		return deny(reason, RulePrivacyWorkLimit), nil
	case stop != nil:
		return Decision{}, stop
	case best >= 0:
		return deny(reason, as.privacy[best].id), nil
	}
	return allow(), nil
}

// errWorkLimit ends a privacy evaluation that exceeded MaxPrivacyWork.
var errWorkLimit = errors.New("privacy evaluation exceeded its work limit")

func roleSwitch(agent, agentOn, customerOn bool, agentRule, customerRule string) Decision {
	if agent {
		return accountSwitch(agentOn, agentRule)
	}
	return accountSwitch(customerOn, customerRule)
}

func accountSwitch(on bool, rule string) Decision {
	if !on {
		return deny(ReasonFeatureDisabled, rule)
	}
	return allow()
}
