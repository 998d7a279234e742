package server

import (
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func timestampOf(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func accountToProto(a *policy.Account) *gatehousev1.Account {
	return &gatehousev1.Account{
		Id:                 a.ID,
		DisplayName:        a.DisplayName,
		CobrowseUrl:        a.CobrowseURL,
		CreateTime:         timestampOf(a.CreateTime),
		DecisionLogPercent: a.DecisionLogPercent,
		Etag:               service.EtagOf(a.Revision),
		Revision:           a.Revision,
	}
}

func settingsToProto(s *policy.LiveGuideSettings) *gatehousev1.LiveGuideSettings {
	return &gatehousev1.LiveGuideSettings{
		AccountId:             s.AccountID,
		AgentClickRestricted:  s.AgentClickRestricted,
		AgentInputRestricted:  s.AgentInputRestricted,
		ClipboardAgent:        s.ClipboardAgent,
		ClipboardCustomer:     s.ClipboardCustomer,
		VideoAgent:            s.VideoAgent,
		VideoCustomer:         s.VideoCustomer,
		VoiceChat:             s.VoiceChat,
		SessionRecording:      s.SessionRecording,
		DocumentShareAgent:    s.DocumentShareAgent,
		DocumentShareCustomer: s.DocumentShareCustomer,
		DocumentDownload:      s.DocumentDownload,
		Chat:                  s.Chat,
		DisplayAgentName:      s.DisplayAgentName,
		ShowDisclaimer:        s.ShowDisclaimer,
		LanguageSelector:      s.LanguageSelector,
		SessionStartUrl:       s.SessionStartURL,
		Etag:                  service.EtagOf(s.Revision),
		Revision:              s.Revision,
	}
}

func settingsFromProto(p *gatehousev1.LiveGuideSettings) policy.LiveGuideSettings {
	return policy.LiveGuideSettings{
		AccountID:             p.GetAccountId(),
		AgentClickRestricted:  p.GetAgentClickRestricted(),
		AgentInputRestricted:  p.GetAgentInputRestricted(),
		ClipboardAgent:        p.GetClipboardAgent(),
		ClipboardCustomer:     p.GetClipboardCustomer(),
		VideoAgent:            p.GetVideoAgent(),
		VideoCustomer:         p.GetVideoCustomer(),
		VoiceChat:             p.GetVoiceChat(),
		SessionRecording:      p.GetSessionRecording(),
		DocumentShareAgent:    p.GetDocumentShareAgent(),
		DocumentShareCustomer: p.GetDocumentShareCustomer(),
		DocumentDownload:      p.GetDocumentDownload(),
		Chat:                  p.GetChat(),
		DisplayAgentName:      p.GetDisplayAgentName(),
		ShowDisclaimer:        p.GetShowDisclaimer(),
		LanguageSelector:      p.GetLanguageSelector(),
		SessionStartURL:       p.GetSessionStartUrl(),
		Revision:              p.GetRevision(),
	}
}

// functionsDesc lists SupportFunctions' fields; field number n is
// policy.Function n-1 (checked by a test).
var functionsDesc = (&gatehousev1.SupportFunctions{}).ProtoReflect().Descriptor().Fields()

func functionsToProto(fs policy.Functions) *gatehousev1.SupportFunctions {
	p := &gatehousev1.SupportFunctions{}
	m := p.ProtoReflect()
	for fn := range policy.NumFunctions {
		if fs.Has(fn) {
			m.Set(functionsDesc.ByNumber(protoreflect.FieldNumber(fn+1)), protoreflect.ValueOfBool(true))
		}
	}
	return p
}

func functionsFromProto(p *gatehousev1.SupportFunctions) policy.Functions {
	var fs policy.Functions
	if p == nil {
		return fs
	}
	m := p.ProtoReflect()
	for fn := range policy.NumFunctions {
		fs = fs.With(fn, m.Get(functionsDesc.ByNumber(protoreflect.FieldNumber(fn+1))).Bool())
	}
	return fs
}

func representativeToProto(r *policy.Representative) *gatehousev1.Representative {
	return &gatehousev1.Representative{
		Id:               r.ID,
		DisplayName:      r.DisplayName,
		TeamId:           r.TeamID,
		Functions:        functionsToProto(r.Functions),
		LiveGuideEnabled: r.LiveGuideEnabled,
		Etag:             service.EtagOf(r.Revision),
		Revision:         r.Revision,
	}
}

func representativeFromProto(p *gatehousev1.Representative) policy.Representative {
	return policy.Representative{
		ID:               p.GetId(),
		DisplayName:      p.GetDisplayName(),
		TeamID:           p.GetTeamId(),
		Functions:        functionsFromProto(p.GetFunctions()),
		LiveGuideEnabled: p.GetLiveGuideEnabled(),
		Revision:         p.GetRevision(),
	}
}

func sessionToProto(s *policy.Session) *gatehousev1.Session {
	p := &gatehousev1.Session{
		Id:                   s.ID,
		AccountId:            s.AccountID,
		Kind:                 gatehousev1.SessionKind(s.Kind),
		State:                gatehousev1.SessionState(s.State),
		RepresentativeId:     s.RepresentativeID,
		CustomerId:           s.CustomerID,
		PortalId:             s.PortalID,
		StartTime:            timestampOf(s.StartTime),
		EndTime:              timestampOf(s.EndTime),
		CustomerRating:       s.CustomerRating,
		RepresentativeRating: s.RepresentativeRating,
		Etag:                 service.EtagOf(s.Revision),
		Revision:             s.Revision,
	}
	for _, sp := range s.Specialists {
		p.SpecialistIds = append(p.SpecialistIds, sp.ID)
		p.Specialists = append(p.Specialists, &gatehousev1.ExternalSpecialist{Id: sp.ID, DisplayName: sp.DisplayName})
	}
	return p
}

func decisionToProto(d policy.Decision, rev uint64) *gatehousev1.CheckFeatureResponse {
	return &gatehousev1.CheckFeatureResponse{
		Decision: &gatehousev1.Decision{
			Allowed: d.Allowed,
			Reason:  gatehousev1.Reason(d.Reason),
			Message: d.Reason.Message(),
			Rule:    d.Rule,
		},
		Revision: rev,
	}
}
