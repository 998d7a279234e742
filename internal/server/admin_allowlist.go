package server

import (
	"context"
	"errors"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/selector"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
)

const (
	maxDescription = 1000
	maxPatternLen  = 2048
	// MaxAllowlistEntries is how many allowlist entries one account may
	// hold; CreateAllowlistEntry past it fails with FAILED_PRECONDITION.
	MaxAllowlistEntries = 10000
	// MaxPrivacyRules is how many privacy rules one account may hold;
	// CreatePrivacyRule past it fails with FAILED_PRECONDITION. Together
	// with policy.MaxPrivacyWork it bounds the cost of one decision.
	MaxPrivacyRules = 1000
)

// normalizePattern validates an allowlist pattern and returns its canonical
// form, adding a violation of field when it is not acceptable.
func normalizePattern(v *violations, field, raw string) string {
	switch {
	case raw == "":
		v.add(field, "is required")
		return ""
	case len(raw) > maxPatternLen:
		v.add(field, "must be at most %d bytes", maxPatternLen)
		return ""
	}
	p, err := urlmatch.ParsePattern(raw)
	if err != nil {
		var pe *urlmatch.PatternError
		if errors.As(err, &pe) {
			v.add(field, "%s", pe.Reason)
		} else {
			v.add(field, "%v", err)
		}
		return ""
	}
	return p.String()
}

// checkPublicSuffixBelow refuses an allowlist pattern (normalized) whose
// host has a public suffix under it: "amazonaws.com" would allow
// "attacker.s3.amazonaws.com", a site of another owner. The entry's
// allow_public_suffix_subdomains acknowledges it. Privacy rules are not
// checked: a url_pattern that covers more protects more.
func checkPublicSuffixBelow(v *violations, field, pattern string) {
	p, err := urlmatch.ParsePattern(pattern)
	if err != nil || p.IsIP() {
		return
	}
	if s, ok := urlmatch.PublicSuffixBelow(p.Host()); ok {
		v.add(field, "covers hosts under the public suffix %q, whose names belong to other owners (for example \"x.%s\"); set allow_public_suffix_subdomains to allow them anyway",
			s, strings.TrimPrefix(s, "*."))
	}
}

var allowlistEntries = &collection[policy.AllowlistEntry, *gatehousev1.AllowlistEntry]{
	kind:     "allowlist entry",
	field:    "entry",
	idPrefix: "e-",
	mutable:  []string{"pattern", "description", "allow_public_suffix_subdomains"},
	max:      MaxAllowlistEntries,
	count:    store.CountAllowlistEntries,
	get:      store.GetAllowlistEntry,
	put:      store.PutAllowlistEntry,
	del:      store.DeleteAllowlistEntry,
	list:     store.ListAllowlistEntries,
	id:       func(e *policy.AllowlistEntry) string { return e.ID },
	revision: func(e *policy.AllowlistEntry) uint64 { return e.Revision },
	toProto: func(e *policy.AllowlistEntry) *gatehousev1.AllowlistEntry {
		return &gatehousev1.AllowlistEntry{Id: e.ID, Pattern: e.Pattern, Description: e.Description, Etag: service.EtagOf(e.Revision), Revision: e.Revision,
			AllowPublicSuffixSubdomains: e.AllowPublicSuffixSubdomains}
	},
	// Patterns are normalized once, on write, by the same code that parses
	// URLs at decision time, so a stored pattern means exactly what the
	// matcher will do with it.
	fromProto: func(_ store.ReadTx, _ string, p *gatehousev1.AllowlistEntry) (policy.AllowlistEntry, error) {
		var v violations
		pattern := normalizePattern(&v, "entry.pattern", p.GetPattern())
		if pattern != "" && !p.GetAllowPublicSuffixSubdomains() {
			checkPublicSuffixBelow(&v, "entry.pattern", pattern)
		}
		v.checkText("entry.description", p.GetDescription(), false, maxDescription)
		return policy.AllowlistEntry{ID: p.GetId(), Pattern: pattern, Description: p.GetDescription(),
			AllowPublicSuffixSubdomains: p.GetAllowPublicSuffixSubdomains()}, v.err()
	},
}

var privacyRules = &collection[policy.PrivacyRule, *gatehousev1.PrivacyRule]{
	kind:     "privacy rule",
	field:    "rule",
	idPrefix: "p-",
	mutable:  []string{"kind", "selector", "url_pattern", "description"},
	max:      MaxPrivacyRules,
	count:    store.CountPrivacyRules,
	get:      store.GetPrivacyRule,
	put:      store.PutPrivacyRule,
	del:      store.DeletePrivacyRule,
	list:     store.ListPrivacyRules,
	id:       func(r *policy.PrivacyRule) string { return r.ID },
	revision: func(r *policy.PrivacyRule) uint64 { return r.Revision },
	toProto: func(r *policy.PrivacyRule) *gatehousev1.PrivacyRule {
		return &gatehousev1.PrivacyRule{Id: r.ID, Kind: gatehousev1.PrivacyRuleKind(r.Kind), Selector: r.Selector,
			UrlPattern: r.URLPattern, Description: r.Description, Etag: service.EtagOf(r.Revision), Revision: r.Revision}
	},
	fromProto: func(_ store.ReadTx, _ string, p *gatehousev1.PrivacyRule) (policy.PrivacyRule, error) {
		var v violations
		r := policy.PrivacyRule{ID: p.GetId(), Kind: policy.PrivacyRuleKind(p.GetKind()), Description: p.GetDescription()}
		switch p.GetKind() {
		case gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_DATA_MASK:
		case gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_UNSPECIFIED:
			v.add("rule.kind", "is required (PRIVACY_RULE_KIND_BUTTON_BLOCK or PRIVACY_RULE_KIND_DATA_MASK)")
		default:
			v.add("rule.kind", "must be PRIVACY_RULE_KIND_BUTTON_BLOCK or PRIVACY_RULE_KIND_DATA_MASK")
		}
		if p.GetSelector() == "" {
			v.add("rule.selector", "is required")
		} else if sel, err := selector.Compile(p.GetSelector()); err != nil {
			var se *selector.Error
			if errors.As(err, &se) {
				v.add("rule.selector", "%s", se.Reason)
			} else {
				v.add("rule.selector", "%v", err)
			}
		} else {
			r.Selector = sel.String()
		}
		if p.GetUrlPattern() != "" {
			r.URLPattern = normalizePattern(&v, "rule.url_pattern", p.GetUrlPattern())
		}
		v.checkText("rule.description", p.GetDescription(), false, maxDescription)
		return r, v.err()
	},
}

func (a *adminService) CreateAllowlistEntry(ctx context.Context, req *gatehousev1.CreateAllowlistEntryRequest) (*gatehousev1.CreateAllowlistEntryResponse, error) {
	return reply[*gatehousev1.CreateAllowlistEntryResponse](allowlistEntries.create(ctx, a.s, req.GetAccountId(), req.GetEntry(), req.GetEntry().GetId()))
}

func (a *adminService) GetAllowlistEntry(ctx context.Context, req *gatehousev1.GetAllowlistEntryRequest) (*gatehousev1.GetAllowlistEntryResponse, error) {
	return reply[*gatehousev1.GetAllowlistEntryResponse](allowlistEntries.getOne(ctx, a.s, req.GetAccountId(), req.GetId()))
}

func (a *adminService) ListAllowlistEntries(ctx context.Context, req *gatehousev1.ListAllowlistEntriesRequest) (*gatehousev1.ListAllowlistEntriesResponse, error) {
	return replyPage[*gatehousev1.ListAllowlistEntriesResponse](allowlistEntries.listPage(ctx, a.s, req.GetAccountId(), req.GetPageSize(), req.GetPageToken()))
}

func (a *adminService) UpdateAllowlistEntry(ctx context.Context, req *gatehousev1.UpdateAllowlistEntryRequest) (*gatehousev1.UpdateAllowlistEntryResponse, error) {
	return reply[*gatehousev1.UpdateAllowlistEntryResponse](allowlistEntries.update(ctx, a.s, req.GetAccountId(), req.GetEntry(), req.GetEntry().GetId(), req.GetEntry().GetEtag(), req.GetUpdateMask()))
}

func (a *adminService) DeleteAllowlistEntry(ctx context.Context, req *gatehousev1.DeleteAllowlistEntryRequest) (*gatehousev1.DeleteAllowlistEntryResponse, error) {
	return replyRevision[*gatehousev1.DeleteAllowlistEntryResponse](allowlistEntries.remove(ctx, a.s, req.GetAccountId(), req.GetId(), req.GetEtag()))
}

func (a *adminService) CreatePrivacyRule(ctx context.Context, req *gatehousev1.CreatePrivacyRuleRequest) (*gatehousev1.CreatePrivacyRuleResponse, error) {
	return reply[*gatehousev1.CreatePrivacyRuleResponse](privacyRules.create(ctx, a.s, req.GetAccountId(), req.GetRule(), req.GetRule().GetId()))
}

func (a *adminService) GetPrivacyRule(ctx context.Context, req *gatehousev1.GetPrivacyRuleRequest) (*gatehousev1.GetPrivacyRuleResponse, error) {
	return reply[*gatehousev1.GetPrivacyRuleResponse](privacyRules.getOne(ctx, a.s, req.GetAccountId(), req.GetId()))
}

func (a *adminService) ListPrivacyRules(ctx context.Context, req *gatehousev1.ListPrivacyRulesRequest) (*gatehousev1.ListPrivacyRulesResponse, error) {
	return replyPage[*gatehousev1.ListPrivacyRulesResponse](privacyRules.listPage(ctx, a.s, req.GetAccountId(), req.GetPageSize(), req.GetPageToken()))
}

func (a *adminService) UpdatePrivacyRule(ctx context.Context, req *gatehousev1.UpdatePrivacyRuleRequest) (*gatehousev1.UpdatePrivacyRuleResponse, error) {
	return reply[*gatehousev1.UpdatePrivacyRuleResponse](privacyRules.update(ctx, a.s, req.GetAccountId(), req.GetRule(), req.GetRule().GetId(), req.GetRule().GetEtag(), req.GetUpdateMask()))
}

func (a *adminService) DeletePrivacyRule(ctx context.Context, req *gatehousev1.DeletePrivacyRuleRequest) (*gatehousev1.DeletePrivacyRuleResponse, error) {
	return replyRevision[*gatehousev1.DeletePrivacyRuleResponse](privacyRules.remove(ctx, a.s, req.GetAccountId(), req.GetId(), req.GetEtag()))
}
