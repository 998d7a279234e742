package client

import (
	"context"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
)

// The wire enums and messages the calls use. Sessions and session
// policies are returned as the generated messages: a wrapper would only
// copy them.
type (
	Role          = gatehousev1.Role
	Feature       = gatehousev1.Feature
	Reason        = gatehousev1.Reason
	Frame         = gatehousev1.Frame
	SessionKind   = gatehousev1.SessionKind
	Element       = gatehousev1.Element
	Session       = gatehousev1.Session
	SessionPolicy = gatehousev1.SessionPolicy
)

// Actor is who asks: a role and the representative, customer or
// specialist id.
type Actor struct {
	Role Role
	ID   string
}

func (a Actor) proto() *gatehousev1.Actor { return &gatehousev1.Actor{Role: a.Role, Id: a.ID} }

// CheckRequest asks whether an actor may use a feature in a session.
type CheckRequest struct {
	SessionID string
	Actor     Actor
	Feature   Feature
	// URL is the page's URL; required for NAVIGATE, CLICK, SCROLL, TYPE,
	// VIEW_ELEMENT and CLIPBOARD.
	URL string
	// Frame is top level when unspecified.
	Frame Frame
	// Element is the element acted on (CLICK, TYPE, VIEW_ELEMENT).
	Element *Element
	// MinRevision makes the server wait, within the deadline, until its
	// snapshot has reached this store revision (e.g. the revision of a
	// write the caller just made).
	MinRevision uint64
}

func (r CheckRequest) proto() *gatehousev1.CheckFeatureRequest {
	return &gatehousev1.CheckFeatureRequest{SessionId: r.SessionID, Actor: r.Actor.proto(), Feature: r.Feature,
		Url: r.URL, Frame: r.Frame, Element: r.Element, MinRevision: r.MinRevision}
}

// Decision is the answer to one check. A denial is a Decision with Allowed
// false, not an error.
type Decision struct {
	Allowed bool
	// Reason says why; Message explains it in English.
	Reason  Reason
	Message string
	// Rule names what decided: a setting name, an allowlist entry id, a
	// privacy rule id or a portal id; empty when nothing specific did.
	Rule string
	// Revision is the store revision of the snapshot that answered.
	Revision uint64
}

func decisionOf(d *gatehousev1.Decision, rev uint64) Decision {
	return Decision{Allowed: d.GetAllowed(), Reason: d.GetReason(), Message: d.GetMessage(), Rule: d.GetRule(), Revision: rev}
}

// Check decides one question.
func (c *Client) Check(ctx context.Context, r CheckRequest) (Decision, error) {
	resp, err := c.decide.CheckFeature(ctx, r.proto())
	if err != nil {
		return Decision{}, fromStatus(err, true)
	}
	return decisionOf(resp.GetDecision(), resp.GetRevision()), nil
}

// CheckMany decides up to 1000 questions against one consistent snapshot;
// decisions[i] answers rs[i]. An unknown session in any of them fails the
// whole call with ErrSessionNotFound.
func (c *Client) CheckMany(ctx context.Context, rs []CheckRequest) ([]Decision, error) {
	req := &gatehousev1.CheckFeaturesRequest{Checks: make([]*gatehousev1.CheckFeatureRequest, len(rs))}
	for i, r := range rs {
		req.Checks[i] = r.proto()
	}
	resp, err := c.decide.CheckFeatures(ctx, req)
	if err != nil {
		return nil, fromStatus(err, true)
	}
	out := make([]Decision, len(resp.GetResults()))
	for i, res := range resp.GetResults() {
		out[i] = decisionOf(res.GetDecision(), res.GetRevision())
	}
	return out, nil
}

// PolicyRequest asks for the policy of a session as actor sees it.
type PolicyRequest struct {
	SessionID string
	Actor     Actor
	// Language is a BCP 47 tag, negotiated to one the server has.
	Language string
	// MinRevision waits as in CheckRequest.
	MinRevision uint64
}

// GetSessionPolicy returns everything a session client needs to enforce
// the account's rules locally.
func (c *Client) GetSessionPolicy(ctx context.Context, r PolicyRequest) (*SessionPolicy, error) {
	resp, err := c.decide.GetSessionPolicy(ctx, &gatehousev1.GetSessionPolicyRequest{SessionId: r.SessionID, Actor: r.Actor.proto(),
		Language: r.Language, MinRevision: r.MinRevision})
	if err != nil {
		return nil, fromStatus(err, true)
	}
	return resp.GetPolicy(), nil
}

// StartRequest starts a session.
type StartRequest struct {
	AccountID        string
	Kind             SessionKind
	RepresentativeID string
	CustomerID       string
	// PortalID is the subportal of a support session; empty for Live Guide.
	PortalID string
}

// StartSession starts a session. Refusals: ErrNotFound (unknown account,
// representative or portal), ErrRepresentativeNotAllowed, ErrPortalClosed
// (see (*Error).NextOpen), ErrNotSubportal, ErrInvalidArgument. It is not
// retried after UNAVAILABLE: the session may have started.
func (c *Client) StartSession(ctx context.Context, r StartRequest) (*Session, error) {
	resp, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: r.AccountID, Kind: r.Kind,
		RepresentativeId: r.RepresentativeID, CustomerId: r.CustomerID, PortalId: r.PortalID})
	if err != nil {
		return nil, fromStatus(err, false)
	}
	return resp.GetSession(), nil
}

// GetSession returns a session, or ErrSessionNotFound.
func (c *Client) GetSession(ctx context.Context, sessionID string) (*Session, error) {
	resp, err := c.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: sessionID})
	if err != nil {
		return nil, fromStatus(err, true)
	}
	return resp.GetSession(), nil
}

// Ratings are the 1-5 ratings given when a session ends; 0 means none.
type Ratings struct {
	Customer       int32
	Representative int32
}

// EndSession ends a session; later checks are denied SESSION_ENDED.
// Ending an ended session fails with ErrSessionEnded.
func (c *Client) EndSession(ctx context.Context, sessionID string, ratings Ratings) (*Session, error) {
	resp, err := c.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: sessionID,
		CustomerRating: ratings.Customer, RepresentativeRating: ratings.Representative})
	if err != nil {
		return nil, fromStatus(err, true)
	}
	return resp.GetSession(), nil
}

// InviteSpecialist adds an external specialist to an active support
// session. Refusals: ErrNotSupportSession, ErrSessionEnded,
// ErrFunctionDisabled, ErrSpecialistLimit.
func (c *Client) InviteSpecialist(ctx context.Context, sessionID, specialistID, displayName string) (*Session, error) {
	resp, err := c.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: sessionID,
		SpecialistId: specialistID, DisplayName: displayName})
	if err != nil {
		return nil, fromStatus(err, true)
	}
	return resp.GetSession(), nil
}

// RemoveSpecialist removes an external specialist from a session; an
// unknown specialist of a known session is ErrNotFound without
// ErrSessionNotFound.
func (c *Client) RemoveSpecialist(ctx context.Context, sessionID, specialistID string) (*Session, error) {
	resp, err := c.sessions.RemoveExternalSpecialist(ctx, &gatehousev1.RemoveExternalSpecialistRequest{SessionId: sessionID,
		SpecialistId: specialistID})
	if err != nil {
		return nil, fromStatus(err, true)
	}
	return resp.GetSession(), nil
}
