package loadgen

import (
	"fmt"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// Expect is the decision a generated request must get. The generator works
// it out from what it built (which switches it set, which entry a URL was
// made from, which rule an element was made for, which portals and
// representative a support session has), not by asking the decision
// engine, so that a load test checks the engine rather than itself.
type Expect struct {
	Allowed bool               `json:"allowed"`
	Reason  gatehousev1.Reason `json:"reason"`
	// Rule is the decision's rule when RuleCheck is RuleExact; RuleAny
	// requires some rule (an allowlist entry the generator cannot pin
	// down: several entries may allow a page) and RuleUnchecked none.
	Rule      string    `json:"rule,omitempty"`
	RuleCheck RuleCheck `json:"rule_check,omitempty"`
}

// RuleCheck says how an Expect checks the decision's rule.
type RuleCheck int

// How the rule of a decision is checked.
const (
	RuleExact RuleCheck = iota
	RuleAny
	RuleUnchecked
)

func (e Expect) String() string {
	rule := fmt.Sprintf("rule %q", e.Rule)
	switch e.RuleCheck {
	case RuleAny:
		rule = "rule (any allowlist entry)"
	case RuleUnchecked:
		rule = "rule (not checked)"
	}
	return fmt.Sprintf("allowed=%t reason=%s %s", e.Allowed, e.Reason, rule)
}

// Matches reports whether d is the expected decision.
func (e Expect) Matches(d *gatehousev1.Decision) bool {
	if d.GetAllowed() != e.Allowed || d.GetReason() != e.Reason {
		return false
	}
	switch e.RuleCheck {
	case RuleExact:
		return d.GetRule() == e.Rule
	case RuleAny:
		return d.GetRule() != ""
	}
	return true
}

func allowedExpect(rule RuleCheck) Expect {
	return Expect{Allowed: true, Reason: gatehousev1.Reason_REASON_ALLOWED, RuleCheck: rule}
}

func deniedExpect(r gatehousev1.Reason, rule string) Expect {
	return Expect{Reason: r, Rule: rule}
}

// cobrowseExpect is the decision of a Live Guide check in p's session by
// the representative (agent) or the customer: feature f on url, which is
// one of p.DeniedURLs when denied, and on an element that privacy rule pp
// targets (pp nil or pp.Rule "" for elements no rule targets: the
// generator builds the click and type targets and harmless fields so that
// no generated selector matches them). The order is the documented
// evaluation order: the page, the role switches, the privacy rules.
func (p *Probe) cobrowseExpect(agent bool, f policy.Feature, denied bool, pp *PrivacyProbe) Expect {
	if denied {
		// Denied URLs are built on hosts no entry names (lookalike
		// suffixes, userinfo in front of another host).
		return deniedExpect(gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED, "allowlist")
	}
	if agent {
		switch {
		case (f == policy.FeatureClick || f == policy.FeatureScroll) && p.ClickRestricted:
			return deniedExpect(gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, "agent_click_restricted")
		case f == policy.FeatureType && p.InputRestricted:
			return deniedExpect(gatehousev1.Reason_REASON_AGENT_INPUT_RESTRICTED, "agent_input_restricted")
		}
		if pp != nil && pp.Rule != "" {
			switch pp.Kind {
			case policy.PrivacyRuleKindButtonBlock:
				return deniedExpect(gatehousev1.Reason_REASON_ELEMENT_BLOCKED, pp.Rule)
			case policy.PrivacyRuleKindDataMask:
				return deniedExpect(gatehousev1.Reason_REASON_ELEMENT_MASKED, pp.Rule)
			}
		}
	}
	// Allowed: by an allowlist entry when the account has an allowlist
	// (the page was made from one), with no rule when it has none.
	if p.Restricted {
		return allowedExpect(RuleAny)
	}
	return allowedExpect(RuleExact)
}

// functionExpect is the decision of support function fn in support
// session s: denied by the top-most portal of the session's portal chain
// that has it off, else by the representative when it is off for them,
// else allowed.
func functionExpect(ad *policy.AccountData, s *policy.Session, fn policy.Function) Expect {
	portals := make(map[string]*policy.Portal, len(ad.Portals))
	for i := range ad.Portals {
		portals[ad.Portals[i].ID] = &ad.Portals[i]
	}
	disabling := ""
	for id := s.PortalID; id != ""; {
		pt := portals[id]
		if pt == nil {
			return deniedExpect(gatehousev1.Reason_REASON_PORTAL_FUNCTION_DISABLED, s.PortalID)
		}
		if !pt.Functions.Has(fn) {
			disabling = pt.ID // keep walking: the top-most one is reported
		}
		id = pt.ParentID
	}
	if disabling != "" {
		return deniedExpect(gatehousev1.Reason_REASON_PORTAL_FUNCTION_DISABLED, disabling)
	}
	for i := range ad.Representatives {
		if r := &ad.Representatives[i]; r.ID == s.RepresentativeID {
			if !r.Functions.Has(fn) {
				return deniedExpect(gatehousev1.Reason_REASON_REPRESENTATIVE_FUNCTION_DISABLED, r.ID)
			}
			return allowedExpect(RuleExact)
		}
	}
	return deniedExpect(gatehousev1.Reason_REASON_REPRESENTATIVE_FUNCTION_DISABLED, s.RepresentativeID)
}

// MismatchError is a decision that differs from what the generated request
// must get.
type MismatchError struct {
	Method  string
	Request proto.Message
	Want    Expect
	Got     *gatehousev1.Decision
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s answered a generated request unexpectedly\n  request: %s\n  want:    %s\n  got:     allowed=%t reason=%s rule %q",
		e.Method, prototext.MarshalOptions{}.Format(e.Request), e.Want, e.Got.GetAllowed(), e.Got.GetReason(), e.Got.GetRule())
	if m := e.Got.GetMessage(); m != "" {
		fmt.Fprintf(&b, " (%s)", m)
	}
	return b.String()
}

// Verify checks a CheckFeature answer against its expectation.
func Verify(req *gatehousev1.CheckFeatureRequest, want Expect, got *gatehousev1.CheckFeatureResponse) error {
	if want.Matches(got.GetDecision()) {
		return nil
	}
	return &MismatchError{Method: "CheckFeature", Request: req, Want: want, Got: got.GetDecision()}
}

// CallError is a call that failed unexpectedly: the request and the error
// the server (or the connection) returned.
type CallError struct {
	Method  string
	Request proto.Message
	Err     error
}

func (e *CallError) Error() string {
	req := "(none)"
	if e.Request != nil {
		req = prototext.MarshalOptions{}.Format(e.Request)
	}
	return fmt.Sprintf("%s failed unexpectedly\n  request: %s\n  error:   %v", e.Method, req, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }

// callError wraps err in a *CallError unless it is nil or a call refused
// to shed load (which a caller honouring RetryInfo expects).
func callError(method string, req proto.Message, err error) error {
	if err == nil {
		return nil
	}
	if _, shed := ShedOf(err); shed {
		return err
	}
	return &CallError{Method: method, Request: req, Err: err}
}
