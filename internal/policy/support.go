package policy

import (
	"errors"
	"fmt"
)

// ErrBrokenChain is returned when a portal or team chain names a missing
// parent or loops; writes prevent both, so it means damaged data.
var ErrBrokenChain = errors.New("broken portal or team chain")

// MaxChainDepth is the most portals a portal chain (a portal and its
// ancestors) and the most teams a team chain may hold. Writes refuse to
// make a longer chain (create, and an update that moves a portal or team
// with everything below it), and every walk up a chain stops there, so a
// chain that is longer anyway (written before the limit) is refused with
// a *ChainTooDeepError rather than walked.
const MaxChainDepth = 64

// ChainTooDeepError says that a portal or team chain would be, or is,
// longer than MaxChainDepth. It is an ErrBrokenChain for code that only
// asks whether a chain can be walked.
type ChainTooDeepError struct {
	Kind string // "portal" or "team"
	ID   string // the record whose chain is too long
	// Depth is how long the chain would be; 0 when a walk gave up at the
	// limit.
	Depth int
}

func (e *ChainTooDeepError) Error() string {
	if e.Depth > 0 {
		return fmt.Sprintf("%s chain deeper than %d: %s %q would be %d deep", e.Kind, MaxChainDepth, e.Kind, e.ID, e.Depth)
	}
	return fmt.Sprintf("%s chain deeper than %d at %s %q", e.Kind, MaxChainDepth, e.Kind, e.ID)
}

// Is makes a ChainTooDeepError an ErrBrokenChain.
func (e *ChainTooDeepError) Is(target error) bool { return target == ErrBrokenChain }

// PortalChain returns the portal and its ancestors, nearest first, using
// lookup to find portals.
func PortalChain(id string, lookup func(id string) (*Portal, bool)) ([]*Portal, error) {
	var chain []*Portal
	for id != "" {
		p, ok := lookup(id)
		if !ok {
			return nil, fmt.Errorf("%w: portal %q not found", ErrBrokenChain, id)
		}
		if len(chain) == MaxChainDepth {
			return nil, &ChainTooDeepError{Kind: "portal", ID: id}
		}
		chain = append(chain, p)
		id = p.ParentID
	}
	return chain, nil
}

// TeamPortal resolves the portal a team serves: its own, else the nearest
// ancestor team's. It returns "" when no team in the chain has one.
func TeamPortal(id string, lookup func(id string) (*Team, bool)) (string, error) {
	for depth := 0; id != ""; depth++ {
		t, ok := lookup(id)
		if !ok {
			return "", fmt.Errorf("%w: team %q not found", ErrBrokenChain, id)
		}
		if depth == MaxChainDepth {
			return "", &ChainTooDeepError{Kind: "team", ID: id}
		}
		if t.PortalID != "" {
			return t.PortalID, nil
		}
		id = t.ParentID
	}
	return "", nil
}

// DisablingPortal returns the top-most portal of chain (nearest first) that
// has fn off, or "" when every portal has it on. The top-most is reported
// because its switch overrides everything below it.
func DisablingPortal(chain []*Portal, fn Function) string {
	for i := len(chain) - 1; i >= 0; i-- {
		if !chain[i].Functions.Has(fn) {
			return chain[i].ID
		}
	}
	return ""
}

// CanServe reports whether a representative whose team chain resolves to
// teamPortal may serve a session at the subportal whose chain (nearest
// first) is chain: the team's portal must be the subportal or one of its
// ancestors.
func CanServe(teamPortal string, chain []*Portal) bool {
	if teamPortal == "" {
		return false
	}
	for _, p := range chain {
		if p.ID == teamPortal {
			return true
		}
	}
	return false
}

// supportState is the compiled portal side of an account.
type supportState struct {
	portals map[string]*Portal
	teams   map[string]*Team
	// disabledBy[portal][fn] is DisablingPortal of the portal's chain,
	// computed once so that a decision walks no chain. A portal whose chain
	// is broken has every function disabled by itself (fail closed).
	disabledBy map[string]*[NumFunctions]string
}

func compileSupport(d *AccountData) (supportState, []string) {
	ss := supportState{
		portals:    make(map[string]*Portal, len(d.Portals)),
		teams:      make(map[string]*Team, len(d.Teams)),
		disabledBy: make(map[string]*[NumFunctions]string, len(d.Portals)),
	}
	for i := range d.Portals {
		ss.portals[d.Portals[i].ID] = &d.Portals[i]
	}
	for i := range d.Teams {
		ss.teams[d.Teams[i].ID] = &d.Teams[i]
	}
	var problems []string
	for id := range ss.portals {
		var by [NumFunctions]string
		chain, err := PortalChain(id, ss.portal)
		for fn := range NumFunctions {
			if err != nil {
				by[fn] = id
			} else {
				by[fn] = DisablingPortal(chain, fn)
			}
		}
		if err != nil {
			problems = append(problems, err.Error())
		}
		ss.disabledBy[id] = &by
	}
	return ss, problems
}

func (ss *supportState) portal(id string) (*Portal, bool) { p, ok := ss.portals[id]; return p, ok }

// checkFunction decides a support function for the session's
// representative: the subportal and every ancestor portal, then the
// representative, must have it on.
func (as *AccountState) checkFunction(sess *Session, fn Function) Decision {
	by, ok := as.support.disabledBy[sess.PortalID]
	if !ok {
		return deny(ReasonPortalFunctionDisabled, sess.PortalID)
	}
	if p := by[fn]; p != "" {
		return deny(ReasonPortalFunctionDisabled, p)
	}
	rep := as.representatives[sess.RepresentativeID]
	if rep == nil || !rep.Functions.Has(fn) {
		return deny(ReasonRepresentativeFunctionDisabled, sess.RepresentativeID)
	}
	return allow()
}

// EffectiveFunctions returns the functions on for a representative at a
// portal (portal chain AND representative).
func (as *AccountState) EffectiveFunctions(portalID, repID string) Functions {
	by, ok := as.support.disabledBy[portalID]
	rep := as.representatives[repID]
	if !ok || rep == nil {
		return 0
	}
	var fs Functions
	for fn := range NumFunctions {
		fs = fs.With(fn, by[fn] == "" && rep.Functions.Has(fn))
	}
	return fs
}

// Portal returns a portal of the account, or nil.
func (as *AccountState) Portal(id string) *Portal { return as.support.portals[id] }
