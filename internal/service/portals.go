package service

import (
	"errors"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// The write rules of portals, teams and representatives. The edge
// validates the shape of a record (names, addresses) into v, then calls
// the Check…Write of its kind inside the writing transaction; field names
// are the request's ("portal.parent_id").

// CheckRef adds a violation of field when id is set but names no resource
// of the account; it returns only store errors.
func CheckRef[T any](tx store.ReadTx, v *errs.Violations, field, id, kind, acct string, get func(store.ReadTx, string, string) (T, error)) error {
	if id == "" {
		return nil
	}
	if !IsSlug(id) {
		v.Add(field, "must match [a-z0-9][a-z0-9-]{0,62}")
		return nil
	}
	_, err := get(tx, acct, id)
	if errors.Is(err, store.ErrNotFound) {
		v.Add(field, "no %s %q in this account", kind, id)
		return nil
	}
	return err
}

// AllFunctions has every support function on.
const AllFunctions = policy.Functions(1<<policy.NumFunctions - 1)

// CheckPortalWrite checks a portal about to be written (created or
// updated) in acct: its business hours and parent exist, it is not put
// under itself or a descendant (a cycle) and no chain through it gets
// deeper than policy.MaxChainDepth, and a portal moved away from a top
// portal does not leave it without a subportal. It returns v's violations
// as one errs.Invalid, or the refusal.
func CheckPortalWrite(tx store.ReadTx, v *errs.Violations, acct string, p *policy.Portal) error {
	if err := CheckRef(tx, v, "portal.business_hours_id", p.BusinessHoursID, "business hours", acct, store.GetBusinessHours); err != nil {
		return err
	}
	if err := CheckRef(tx, v, "portal.parent_id", p.ParentID, "portal", acct, store.GetPortal); err != nil {
		return err
	}
	if p.ParentID != "" && len(*v) == 0 && ParentChanges(tx, acct, p.ID, p.ParentID, store.GetPortal, func(p *policy.Portal) string { return p.ParentID }) {
		parents, err := PortalParents(tx, acct)
		if err != nil {
			return err
		}
		if err := CheckChainWrite(v, "portal", "portal", p.ID, p.ParentID, parents); err != nil {
			return err
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	if cur, err := store.GetPortal(tx, acct, p.ID); err == nil && cur.ParentID != p.ParentID && cur.ParentID != "" {
		if err := CheckNotLastSubportal(tx, acct, &cur); err != nil {
			return err
		}
	}
	return nil
}

// CreateDefaultSubportal gives a new top portal its default subportal,
// which has every function on so that the top portal's switches decide.
// A top portal always has at least one subportal.
func CreateDefaultSubportal(tx store.Tx, acct string, p *policy.Portal) error {
	if p.ParentID != "" {
		return nil
	}
	sub := policy.Portal{ID: p.ID + "-default", ParentID: p.ID, Name: p.Name + " (default)", Functions: AllFunctions}
	if len(sub.ID) > 63 {
		sub.ID = NewID("p-")
	}
	if _, err := store.GetPortal(tx, acct, sub.ID); err == nil {
		sub.ID = NewID("p-")
	}
	return store.PutPortal(tx, acct, &sub)
}

// CheckNotLastSubportal refuses to take p away from its parent when p is
// the parent's last subportal and the parent is a top portal.
func CheckNotLastSubportal(tx store.ReadTx, acct string, p *policy.Portal) error {
	parent, err := store.GetPortal(tx, acct, p.ParentID)
	if err != nil || parent.ParentID != "" {
		return nil //nolint:nilerr // a missing or non-top parent has no minimum
	}
	all, _, err := store.ListPortals(tx, acct, "", 0)
	if err != nil {
		return err
	}
	for _, q := range all {
		if q.ParentID == parent.ID && q.ID != p.ID {
			return nil
		}
	}
	return errs.Precondition(ReasonLastSubportal, nil,
		"portal %q is the last subportal of top portal %q; a top portal always keeps one", p.ID, parent.ID)
}

// BeforeDeletePortal refuses to delete a portal that teams or active
// sessions use, or that is the last subportal of a top portal. Deleting a
// top portal deletes its subportals with it when nothing uses them.
func BeforeDeletePortal(tx store.Tx, acct string, p *policy.Portal) error {
	all, _, err := store.ListPortals(tx, acct, "", 0)
	if err != nil {
		return err
	}
	victims := []string{p.ID}
	for _, q := range all {
		if q.ParentID != p.ID {
			continue
		}
		if p.ParentID != "" {
			return InUse("portal", p.ID, fmt.Sprintf("subportal %q", q.ID))
		}
		victims = append(victims, q.ID)
	}
	for _, q := range all {
		for _, vid := range victims[1:] {
			if q.ParentID == vid {
				return InUse("portal", vid, fmt.Sprintf("subportal %q", q.ID))
			}
		}
	}
	if p.ParentID != "" {
		if err := CheckNotLastSubportal(tx, acct, p); err != nil {
			return err
		}
	}
	teams, _, err := store.ListTeams(tx, acct, "", 0)
	if err != nil {
		return err
	}
	for _, vid := range victims {
		for _, t := range teams {
			if t.PortalID == vid {
				return InUse("portal", vid, fmt.Sprintf("team %q", t.ID))
			}
		}
		n, err := store.CountActiveSessions(tx, acct, func(s *policy.Session) bool { return s.PortalID == vid })
		if err != nil {
			return err
		}
		if n > 0 {
			return InUse("portal", vid, fmt.Sprintf("%d active session(s)", n))
		}
	}
	for _, vid := range victims[1:] {
		if err := store.DeletePortal(tx, acct, vid); err != nil {
			return err
		}
	}
	return nil
}

// CheckTeamWrite checks a team about to be written in acct: its portal
// and parent exist, and its chain makes no cycle and stays within
// policy.MaxChainDepth. It returns v's violations as one errs.Invalid, or
// the refusal.
func CheckTeamWrite(tx store.ReadTx, v *errs.Violations, acct string, t *policy.Team) error {
	if err := CheckRef(tx, v, "team.portal_id", t.PortalID, "portal", acct, store.GetPortal); err != nil {
		return err
	}
	if err := CheckRef(tx, v, "team.parent_id", t.ParentID, "team", acct, store.GetTeam); err != nil {
		return err
	}
	if t.ParentID != "" && len(*v) == 0 && ParentChanges(tx, acct, t.ID, t.ParentID, store.GetTeam, func(t *policy.Team) string { return t.ParentID }) {
		parents, err := TeamParents(tx, acct)
		if err != nil {
			return err
		}
		if err := CheckChainWrite(v, "team", "team", t.ID, t.ParentID, parents); err != nil {
			return err
		}
	}
	return v.Err()
}

// BeforeDeleteTeam refuses to delete a team that has subteams or
// representatives.
func BeforeDeleteTeam(tx store.Tx, acct string, t *policy.Team) error {
	all, _, err := store.ListTeams(tx, acct, "", 0)
	if err != nil {
		return err
	}
	for _, q := range all {
		if q.ParentID == t.ID {
			return InUse("team", t.ID, fmt.Sprintf("subteam %q", q.ID))
		}
	}
	reps, _, err := store.ListRepresentatives(tx, acct, "", 0)
	if err != nil {
		return err
	}
	for _, r := range reps {
		if r.TeamID == t.ID {
			return InUse("team", t.ID, fmt.Sprintf("representative %q", r.ID))
		}
	}
	return nil
}

// CheckRepresentativeWrite checks a representative about to be written in
// acct: its team exists.
func CheckRepresentativeWrite(tx store.ReadTx, v *errs.Violations, acct string, r *policy.Representative) error {
	if err := CheckRef(tx, v, "representative.team_id", r.TeamID, "team", acct, store.GetTeam); err != nil {
		return err
	}
	return v.Err()
}

// BeforeDeleteRepresentative refuses to delete a representative with
// active sessions.
func BeforeDeleteRepresentative(tx store.Tx, acct string, r *policy.Representative) error {
	n, err := store.ActiveSessionsOf(tx, acct, r.ID)
	if err != nil {
		return err
	}
	if n > 0 {
		return errs.Precondition(ReasonInUse, nil,
			"representative %q has %d active session(s); end them first", r.ID, n)
	}
	return nil
}
