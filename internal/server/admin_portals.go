package server

import (
	"context"
	"net/mail"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

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
		NotificationEmail: p.NotificationEmail, BusinessHoursId: p.BusinessHoursID, Etag: service.EtagOf(p.Revision), Revision: p.Revision}
}

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
		return out, service.CheckPortalWrite(tx, (*errs.Violations)(&v), acct, &out)
	},
	afterCreate:  service.CreateDefaultSubportal,
	beforeDelete: service.BeforeDeletePortal,
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
		return &gatehousev1.Team{Id: t.ID, ParentId: t.ParentID, Name: t.Name, PortalId: t.PortalID, Etag: service.EtagOf(t.Revision), Revision: t.Revision}
	},
	fromProto: func(tx store.ReadTx, acct string, p *gatehousev1.Team) (policy.Team, error) {
		var v violations
		out := policy.Team{ID: p.GetId(), ParentID: p.GetParentId(), Name: p.GetName(), PortalID: p.GetPortalId()}
		v.checkText("team.name", out.Name, true, maxDisplayName)
		return out, service.CheckTeamWrite(tx, (*errs.Violations)(&v), acct, &out)
	},
	beforeDelete: service.BeforeDeleteTeam,
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
