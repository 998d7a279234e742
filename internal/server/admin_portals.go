package server

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
)

// checkRef adds a violation of field when id is set but names no resource
// of the account; it returns only store errors.
func checkRef[T any](tx store.ReadTx, v *violations, field, id, kind, acct string, get func(store.ReadTx, string, string) (T, error)) error {
	if id == "" {
		return nil
	}
	if !isSlug(id) {
		v.add(field, "must match [a-z0-9][a-z0-9-]{0,62}")
		return nil
	}
	_, err := get(tx, acct, id)
	if errors.Is(err, store.ErrNotFound) {
		v.add(field, "no %s %q in this account", kind, id)
		return nil
	}
	return err
}

// inUse is the FAILED_PRECONDITION of a delete refused because of what
// still references the resource.
func inUse(kind, id, by string) error {
	return newError(codes.FailedPrecondition, reasonInUse, map[string]string{"referenced_by": by},
		"%s %q is still in use by %s", kind, id, by)
}

// txPortals and txTeams look records up inside a transaction, for the chain
// walks of internal/policy.
func txPortals(tx store.ReadTx, acct string) func(string) (*policy.Portal, bool) {
	return func(id string) (*policy.Portal, bool) {
		p, err := store.GetPortal(tx, acct, id)
		return &p, err == nil
	}
}

func txTeams(tx store.ReadTx, acct string) func(string) (*policy.Team, bool) {
	return func(id string) (*policy.Team, bool) {
		t, err := store.GetTeam(tx, acct, id)
		return &t, err == nil
	}
}

const maxEmail = 254

// validateEmail accepts one bare address (no display name), as mail
// servers expect in a RCPT TO.
func validateEmail(v *violations, field, addr string) {
	if addr == "" {
		return
	}
	a, err := mail.ParseAddress(addr)
	switch {
	case len(addr) > maxEmail:
		v.add(field, "must be at most %d bytes", maxEmail)
	case err != nil || a.Address != addr || a.Name != "" || !strings.Contains(addr[strings.LastIndexByte(addr, '@')+1:], "."):
		v.add(field, "must be a plain e-mail address such as support@example.com")
	}
}

func portalToProto(p *policy.Portal) *gatehousev1.Portal {
	return &gatehousev1.Portal{Id: p.ID, ParentId: p.ParentID, Name: p.Name, Functions: functionsToProto(p.Functions),
		NotificationEmail: p.NotificationEmail, BusinessHoursId: p.BusinessHoursID, Etag: etagOf(p.Revision), Revision: p.Revision}
}

// allFunctions has every support function on.
const allFunctions = policy.Functions(1<<policy.NumFunctions - 1)

var portals = &collection[policy.Portal, *gatehousev1.Portal]{
	kind:     "portal",
	field:    "portal",
	idPrefix: "p-",
	mutable:  []string{"parent_id", "name", "functions", "notification_email", "business_hours_id"},
	get:      store.GetPortal,
	put:      store.PutPortal,
	del:      store.DeletePortal,
	list:     store.ListPortals,
	id:       func(p *policy.Portal) string { return p.ID },
	revision: func(p *policy.Portal) uint64 { return p.Revision },
	toProto:  portalToProto,
	fromProto: func(tx store.ReadTx, acct string, p *gatehousev1.Portal) (policy.Portal, error) {
		var v violations
		out := policy.Portal{ID: p.GetId(), ParentID: p.GetParentId(), Name: p.GetName(), Functions: functionsFromProto(p.GetFunctions()),
			NotificationEmail: p.GetNotificationEmail(), BusinessHoursID: p.GetBusinessHoursId()}
		v.checkText("portal.name", out.Name, true, maxDisplayName)
		validateEmail(&v, "portal.notification_email", out.NotificationEmail)
		if err := checkRef(tx, &v, "portal.business_hours_id", out.BusinessHoursID, "business hours", acct, store.GetBusinessHours); err != nil {
			return out, err
		}
		if err := checkRef(tx, &v, "portal.parent_id", out.ParentID, "portal", acct, store.GetPortal); err != nil {
			return out, err
		}
		if out.ParentID != "" && len(v) == 0 && parentChanges(tx, acct, out.ID, out.ParentID, store.GetPortal, func(p *policy.Portal) string { return p.ParentID }) {
			// Not under itself or a descendant (a cycle), and no chain
			// through it deeper than policy.MaxChainDepth.
			parents, err := portalParents(tx, acct)
			if err != nil {
				return out, err
			}
			if err := checkChainWrite(&v, "portal", "portal", out.ID, out.ParentID, parents); err != nil {
				return out, err
			}
		}
		if err := v.err(); err != nil {
			return out, err
		}
		// A portal moved away from a top portal must not leave it without
		// a subportal.
		if cur, err := store.GetPortal(tx, acct, out.ID); err == nil && cur.ParentID != out.ParentID && cur.ParentID != "" {
			if err := checkNotLastSubportal(tx, acct, &cur); err != nil {
				return out, err
			}
		}
		return out, nil
	},
	// A top portal always comes with a default subportal, which has every
	// function on so that the top portal's switches decide.
	afterCreate: func(tx store.Tx, acct string, p *policy.Portal) error {
		if p.ParentID != "" {
			return nil
		}
		sub := policy.Portal{ID: p.ID + "-default", ParentID: p.ID, Name: p.Name + " (default)", Functions: allFunctions}
		if len(sub.ID) > 63 {
			sub.ID = newID("p-")
		}
		if _, err := store.GetPortal(tx, acct, sub.ID); err == nil {
			sub.ID = newID("p-")
		}
		return store.PutPortal(tx, acct, &sub)
	},
	beforeDelete: deletePortalChecks,
}

// checkNotLastSubportal refuses to take p away from its parent when p is
// the parent's last subportal and the parent is a top portal.
func checkNotLastSubportal(tx store.ReadTx, acct string, p *policy.Portal) error {
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
	return newError(codes.FailedPrecondition, "LAST_SUBPORTAL", nil,
		"portal %q is the last subportal of top portal %q; a top portal always keeps one", p.ID, parent.ID)
}

// deletePortalChecks refuses to delete a portal that teams or active
// sessions use, or that is the last subportal of a top portal. Deleting a
// top portal deletes its subportals with it when nothing uses them.
func deletePortalChecks(tx store.Tx, acct string, p *policy.Portal) error {
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
			return inUse("portal", p.ID, fmt.Sprintf("subportal %q", q.ID))
		}
		victims = append(victims, q.ID)
	}
	for _, q := range all {
		for _, vid := range victims[1:] {
			if q.ParentID == vid {
				return inUse("portal", vid, fmt.Sprintf("subportal %q", q.ID))
			}
		}
	}
	if p.ParentID != "" {
		if err := checkNotLastSubportal(tx, acct, p); err != nil {
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
				return inUse("portal", vid, fmt.Sprintf("team %q", t.ID))
			}
		}
		n, err := store.CountActiveSessions(tx, acct, func(s *policy.Session) bool { return s.PortalID == vid })
		if err != nil {
			return err
		}
		if n > 0 {
			return inUse("portal", vid, fmt.Sprintf("%d active session(s)", n))
		}
	}
	for _, vid := range victims[1:] {
		if err := store.DeletePortal(tx, acct, vid); err != nil {
			return err
		}
	}
	return nil
}

var teams = &collection[policy.Team, *gatehousev1.Team]{
	kind:     "team",
	field:    "team",
	idPrefix: "t-",
	mutable:  []string{"parent_id", "name", "portal_id"},
	get:      store.GetTeam,
	put:      store.PutTeam,
	del:      store.DeleteTeam,
	list:     store.ListTeams,
	id:       func(t *policy.Team) string { return t.ID },
	revision: func(t *policy.Team) uint64 { return t.Revision },
	toProto: func(t *policy.Team) *gatehousev1.Team {
		return &gatehousev1.Team{Id: t.ID, ParentId: t.ParentID, Name: t.Name, PortalId: t.PortalID, Etag: etagOf(t.Revision), Revision: t.Revision}
	},
	fromProto: func(tx store.ReadTx, acct string, p *gatehousev1.Team) (policy.Team, error) {
		var v violations
		out := policy.Team{ID: p.GetId(), ParentID: p.GetParentId(), Name: p.GetName(), PortalID: p.GetPortalId()}
		v.checkText("team.name", out.Name, true, maxDisplayName)
		if err := checkRef(tx, &v, "team.portal_id", out.PortalID, "portal", acct, store.GetPortal); err != nil {
			return out, err
		}
		if err := checkRef(tx, &v, "team.parent_id", out.ParentID, "team", acct, store.GetTeam); err != nil {
			return out, err
		}
		if out.ParentID != "" && len(v) == 0 && parentChanges(tx, acct, out.ID, out.ParentID, store.GetTeam, func(t *policy.Team) string { return t.ParentID }) {
			parents, err := teamParents(tx, acct)
			if err != nil {
				return out, err
			}
			if err := checkChainWrite(&v, "team", "team", out.ID, out.ParentID, parents); err != nil {
				return out, err
			}
		}
		return out, v.err()
	},
	beforeDelete: func(tx store.Tx, acct string, t *policy.Team) error {
		all, _, err := store.ListTeams(tx, acct, "", 0)
		if err != nil {
			return err
		}
		for _, q := range all {
			if q.ParentID == t.ID {
				return inUse("team", t.ID, fmt.Sprintf("subteam %q", q.ID))
			}
		}
		reps, _, err := store.ListRepresentatives(tx, acct, "", 0)
		if err != nil {
			return err
		}
		for _, r := range reps {
			if r.TeamID == t.ID {
				return inUse("team", t.ID, fmt.Sprintf("representative %q", r.ID))
			}
		}
		return nil
	},
}

func (a *adminService) CreatePortal(ctx context.Context, req *gatehousev1.CreatePortalRequest) (*gatehousev1.CreatePortalResponse, error) {
	return reply[*gatehousev1.CreatePortalResponse](portals.create(ctx, a.s, req.GetAccountId(), req.GetPortal(), req.GetPortal().GetId()))
}

func (a *adminService) GetPortal(ctx context.Context, req *gatehousev1.GetPortalRequest) (*gatehousev1.GetPortalResponse, error) {
	return reply[*gatehousev1.GetPortalResponse](portals.getOne(ctx, a.s, req.GetAccountId(), req.GetId()))
}

func (a *adminService) ListPortals(ctx context.Context, req *gatehousev1.ListPortalsRequest) (*gatehousev1.ListPortalsResponse, error) {
	return replyPage[*gatehousev1.ListPortalsResponse](portals.listPage(ctx, a.s, req.GetAccountId(), req.GetPageSize(), req.GetPageToken()))
}

func (a *adminService) UpdatePortal(ctx context.Context, req *gatehousev1.UpdatePortalRequest) (*gatehousev1.UpdatePortalResponse, error) {
	return reply[*gatehousev1.UpdatePortalResponse](portals.update(ctx, a.s, req.GetAccountId(), req.GetPortal(), req.GetPortal().GetId(), req.GetPortal().GetEtag(), req.GetUpdateMask()))
}

func (a *adminService) DeletePortal(ctx context.Context, req *gatehousev1.DeletePortalRequest) (*gatehousev1.DeletePortalResponse, error) {
	return replyRevision[*gatehousev1.DeletePortalResponse](portals.remove(ctx, a.s, req.GetAccountId(), req.GetId(), req.GetEtag()))
}

func (a *adminService) CreateTeam(ctx context.Context, req *gatehousev1.CreateTeamRequest) (*gatehousev1.CreateTeamResponse, error) {
	return reply[*gatehousev1.CreateTeamResponse](teams.create(ctx, a.s, req.GetAccountId(), req.GetTeam(), req.GetTeam().GetId()))
}

func (a *adminService) GetTeam(ctx context.Context, req *gatehousev1.GetTeamRequest) (*gatehousev1.GetTeamResponse, error) {
	return reply[*gatehousev1.GetTeamResponse](teams.getOne(ctx, a.s, req.GetAccountId(), req.GetId()))
}

func (a *adminService) ListTeams(ctx context.Context, req *gatehousev1.ListTeamsRequest) (*gatehousev1.ListTeamsResponse, error) {
	return replyPage[*gatehousev1.ListTeamsResponse](teams.listPage(ctx, a.s, req.GetAccountId(), req.GetPageSize(), req.GetPageToken()))
}

func (a *adminService) UpdateTeam(ctx context.Context, req *gatehousev1.UpdateTeamRequest) (*gatehousev1.UpdateTeamResponse, error) {
	return reply[*gatehousev1.UpdateTeamResponse](teams.update(ctx, a.s, req.GetAccountId(), req.GetTeam(), req.GetTeam().GetId(), req.GetTeam().GetEtag(), req.GetUpdateMask()))
}

func (a *adminService) DeleteTeam(ctx context.Context, req *gatehousev1.DeleteTeamRequest) (*gatehousev1.DeleteTeamResponse, error) {
	return replyRevision[*gatehousev1.DeleteTeamResponse](teams.remove(ctx, a.s, req.GetAccountId(), req.GetId(), req.GetEtag()))
}
