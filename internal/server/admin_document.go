package server

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/accountdoc"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/observe"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/protobuf/proto"
)

// reasonAccountChanged is the ErrorInfo reason of an ApplyAccount refused
// because the account changed since the expected revision.
const reasonAccountChanged = "ACCOUNT_CHANGED"

// DefaultMaxApplyWrites bounds the records one ApplyAccount may write in
// its transaction when the store declares no operations limit of its own:
// an account at its allowlist and privacy-rule limits (11 000 records) and
// its portals, teams and representatives fit.
const DefaultMaxApplyWrites = 20000

// maxApplyWrites is the bound of one apply on st: a store that declares its
// operations per transaction (Limits().MaxOps) leaves room for one audit
// event per write, the apply's own event and the audit log's order key
// (store.OrderAuditEvents).
func maxApplyWrites(st store.Store) int {
	if l := st.Limits(); l.MaxOps > 0 {
		return max(1, (l.MaxOps-2)/2)
	}
	return DefaultMaxApplyWrites
}

func (a *adminService) ExportAccount(ctx context.Context, req *gatehousev1.ExportAccountRequest) (*gatehousev1.ExportAccountResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	var doc *gatehousev1.AccountDocument
	err := a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		doc, err = accountdoc.Export(tx, a.docRules(ctx, time.Time{}), req.GetAccountId())
		if err == nil && doc == nil {
			err = errs.NotFoundf("account", req.GetAccountId())
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &gatehousev1.ExportAccountResponse{Document: doc}, nil
}

func (a *adminService) ApplyAccount(ctx context.Context, req *gatehousev1.ApplyAccountRequest) (*gatehousev1.ApplyAccountResponse, error) {
	var v violations
	v.checkID("document.account.id", req.GetDocument().GetAccount().GetId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	rules := a.docRules(ctx, a.s.now().UTC())
	opts := accountdoc.Options{DryRun: req.GetDryRun(), Prune: req.GetPrune(), ExpectedRevision: req.GetExpectedRevision(),
		MaxWrites: maxApplyWrites(a.s.store)}
	var resp *gatehousev1.ApplyAccountResponse
	rev, err := a.s.write(ctx, func(tx store.Tx) (err error) {
		// The plan builds on the revision the transaction reads; a commit
		// landing meanwhile makes this one conflict (and run again).
		opts.Current, opts.Changes = tx.Revision(), tx.Changes
		resp, err = accountdoc.Apply(tx, rules, req.GetDocument(), opts)
		if err != nil {
			return err
		}
		if at, ok := tx.(*observe.AuditTx); ok {
			at.Summary = applySummary(req, resp)
		}
		return nil
	})
	switch {
	case accountdoc.IsRollback(err):
		return resp, nil
	case err != nil:
		return nil, applyError(err)
	}
	resp.Revision = rev
	return resp, nil
}

// applySummary is the audit event of one apply: its options and items;
// the event of each record it wrote follows with the same revision.
func applySummary(req *gatehousev1.ApplyAccountRequest, resp *gatehousev1.ApplyAccountResponse) *store.AuditEvent {
	type item struct {
		Action  string   `json:"action"`
		Section string   `json:"section"`
		ID      string   `json:"id"`
		Fields  []string `json:"fields,omitempty"`
	}
	sum := struct {
		Prune            bool   `json:"prune,omitempty"`
		ExpectedRevision uint64 `json:"expected_revision,omitempty"`
		Items            []item `json:"items"`
	}{Prune: req.GetPrune(), ExpectedRevision: req.GetExpectedRevision()}
	for _, c := range resp.GetChanges() {
		it := item{Action: strings.ToLower(strings.TrimPrefix(c.GetAction().String(), "CHANGE_ACTION_")), Section: c.GetSection(), ID: c.GetId()}
		for _, f := range c.GetFields() {
			it.Fields = append(it.Fields, f.GetPath())
		}
		sum.Items = append(sum.Items, it)
	}
	b, _ := json.Marshal(sum)
	acct := req.GetDocument().GetAccount().GetId()
	return &store.AuditEvent{AccountID: acct, ResourceType: "account_apply", ResourceID: acct, After: string(b)}
}

// applyError maps the refusals of accountdoc to the API's errors; a rule's
// own error keeps its code, with its fields named by their place in the
// document.
func applyError(err error) error {
	var ie *accountdoc.InvalidError
	var item *accountdoc.ItemError
	var ce *accountdoc.ChangedError
	var le *accountdoc.LimitError
	switch {
	case errors.As(err, &ie):
		var v violations
		v.add(ie.Field, "%s", ie.Reason)
		return v.err()
	case errors.As(err, &ce):
		return errs.Refuse(errs.Conflict, reasonAccountChanged, map[string]string{"current_revision": strconv.FormatUint(ce.Current, 10)}, "%s", ce.Error())
	case errors.As(err, &le):
		return errs.Refuse(errs.ResourceExhausted, errs.ReasonApplyTooLarge, map[string]string{"limit": strconv.Itoa(le.Max), "writes": strconv.Itoa(le.Writes)}, "%s", le.Error())
	case errors.As(err, &item):
		e, ok := errs.As(item.Err)
		if !ok {
			return item.Err
		}
		if e.Kind == errs.Invalid && len(e.Fields) > 0 {
			v := make(errs.Violations, len(e.Fields))
			for i, f := range e.Fields {
				field := item.Field
				if _, rest, ok := strings.Cut(f.Field, "."); ok && !strings.HasPrefix(f.Field, "update_mask") {
					field += "." + rest
				}
				v[i] = errs.FieldViolation{Field: field, Description: f.Description}
			}
			return v.Err()
		}
		return errs.Prefix(e, item.What+": ")
	}
	return err
}

// checkRuleOf refuses a caller that the access rule of method (an RPC whose
// rule is store-wide) would refuse: ApplyAccount creates accounts and sets
// co-browse URLs only for the callers CreateAccount and SetCobrowseUrl
// accept.
func (s *Server) checkRuleOf(ctx context.Context, method string) error {
	rule := s.rules[method]
	caller, ok := auth.FromContext(ctx)
	if !ok {
		if s.authOn {
			return errs.Denied("%s needs a caller", method)
		}
		caller = auth.Local
	}
	if !caller.Has(rule.role) {
		return errs.Denied("this needs what %s needs, the %s role; caller %q is %s", method, rule.role, caller.Name, caller.Role)
	}
	if rule.allAccounts && caller.AccountID != "" {
		return errs.Denied("this needs what %s needs, a caller of all accounts; caller %q is scoped to account %q", method, caller.Name, caller.AccountID)
	}
	return nil
}

// docRules gives accountdoc the write rules of the single RPCs. now is the
// creation time of an account the apply creates.
func (a *adminService) docRules(ctx context.Context, now time.Time) accountdoc.Rules {
	return &docRules{a: a, ctx: ctx, now: now}
}

type docRules struct {
	a   *adminService
	ctx context.Context
	now time.Time
}

func (r *docRules) Account(tx store.ReadTx, id string) (*gatehousev1.Account, error) {
	acct, err := store.GetAccount(tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return accountToProto(&acct), nil
}

func (r *docRules) CreateAccount(tx store.Tx, p *gatehousev1.Account) error {
	if err := r.a.s.checkRuleOf(r.ctx, adminSvc+"CreateAccount"); err != nil {
		return err
	}
	if err := validateNewAccount(p); err != nil {
		return err
	}
	acct := policy.Account{ID: p.GetId(), DisplayName: p.GetDisplayName(), DecisionLogPercent: p.GetDecisionLogPercent(), CreateTime: r.now}
	return service.CreateAccount(tx, &acct)
}

func (r *docRules) UpdateAccount(tx store.Tx, p *gatehousev1.Account) error {
	_, err := updateAccountIn(tx, p, nil)
	return err
}

func (r *docRules) SetCobrowseURL(tx store.Tx, acct, url string) error {
	if err := r.a.s.checkRuleOf(r.ctx, adminSvc+"SetCobrowseUrl"); err != nil {
		return err
	}
	var v violations
	r.a.checkCobrowseURLField(&v, "url", url)
	if err := v.err(); err != nil {
		return err
	}
	_, err := service.SetCobrowseURL(tx, acct, url)
	return err
}

func (r *docRules) Settings(tx store.ReadTx, acct string) (*gatehousev1.LiveGuideSettings, error) {
	st, err := getSettings(tx, acct)
	if err != nil {
		return nil, err
	}
	return settingsToProto(&st), nil
}

func (r *docRules) UpdateSettings(tx store.Tx, s *gatehousev1.LiveGuideSettings) error {
	_, err := updateSettingsIn(tx, s, nil)
	return err
}

func (r *docRules) Customizations(tx store.ReadTx, acct string) ([]*gatehousev1.Customization, error) {
	var out []*gatehousev1.Customization
	for _, lang := range policy.Languages {
		c, err := store.GetCustomization(tx, acct, lang)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, customizationToProto(&c))
	}
	return out, nil
}

func (r *docRules) DefaultCustomization(acct, lang string) *gatehousev1.Customization {
	c := policy.DefaultCustomization(acct, lang)
	return customizationToProto(&c)
}

func (r *docRules) UpdateCustomization(tx store.Tx, c *gatehousev1.Customization) error {
	if !policy.IsLanguage(c.GetLanguage()) {
		var v violations
		v.add("customization.language", "must be exactly one of %s", strings.Join(policy.Languages, ", "))
		return v.err()
	}
	_, err := updateCustomizationIn(tx, c, nil)
	return err
}

func (r *docRules) Collections() []accountdoc.Collection {
	return []accountdoc.Collection{
		docCollection[policy.BusinessHours, *gatehousev1.BusinessHours]{businessHours, "business_hours"},
		docCollection[policy.AllowlistEntry, *gatehousev1.AllowlistEntry]{allowlistEntries, "allowlist"},
		docCollection[policy.PrivacyRule, *gatehousev1.PrivacyRule]{privacyRules, "privacy_rules"},
		docCollection[policy.Portal, *gatehousev1.Portal]{portals, "portals"},
		docCollection[policy.Team, *gatehousev1.Team]{teams, "teams"},
		docCollection[policy.Representative, *gatehousev1.Representative]{representatives, "representatives"},
	}
}

// docCollection is a collection as accountdoc sees it: the same create,
// update and delete rules as its RPCs, without etags.
type docCollection[D any, P proto.Message] struct {
	c       *collection[D, P]
	section string
}

func (d docCollection[D, P]) Section() string { return d.section }
func (d docCollection[D, P]) Kind() string    { return d.c.kind }

func (d docCollection[D, P]) List(tx store.ReadTx, acct string) ([]proto.Message, error) {
	items, _, err := d.c.list(tx, acct, "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]proto.Message, len(items))
	for i := range items {
		out[i] = d.c.toProto(&items[i])
	}
	return out, nil
}

func (d docCollection[D, P]) Get(tx store.ReadTx, acct, id string) (proto.Message, error) {
	v, err := d.c.get(tx, acct, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return d.c.toProto(&v), nil
}

func (d docCollection[D, P]) Create(tx store.Tx, acct string, m proto.Message) error {
	p := m.(P)
	var v violations
	v.checkID(d.c.field+".id", str(p, "id"), false)
	if err := v.err(); err != nil {
		return err
	}
	_, err := d.c.createIn(tx, acct, p, str(p, "id"))
	return err
}

func (d docCollection[D, P]) Update(tx store.Tx, acct string, m proto.Message) error {
	p := m.(P)
	_, err := d.c.updateIn(tx, acct, p, str(p, "id"), "", nil)
	return err
}

func (d docCollection[D, P]) Delete(tx store.Tx, acct, id string) error {
	return d.c.removeIn(tx, acct, id, "")
}

// str reads a string field of m by name.
func str(m proto.Message, field string) string { return fieldString(m, field) }
