package server

import (
	"context"
	"errors"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// Bounds of the customization texts, in characters.
const (
	maxDisclaimerText = 2000
	maxAlias          = 100
	// maxLanguageTag bounds the tag or Accept-Language list GetCustomization
	// negotiates.
	maxLanguageTag = 1024
)

// customizationMutable are the Customization fields an update may change.
var customizationMutable = []string{"disclaimer_text", "agent_alias", "customer_alias"}

func customizationToProto(c *policy.Customization) *gatehousev1.Customization {
	return &gatehousev1.Customization{
		AccountId:      c.AccountID,
		Language:       c.Language,
		DisclaimerText: c.DisclaimerText,
		AgentAlias:     c.AgentAlias,
		CustomerAlias:  c.CustomerAlias,
		Etag:           service.EtagOf(c.Revision),
		Revision:       c.Revision,
	}
}

// getCustomization reads an account's texts for lang (one of
// policy.Languages): the stored ones, or the built-in defaults (revision 0)
// while none are stored. NOT_FOUND when the account does not exist.
func getCustomization(tx store.ReadTx, acct, lang string) (policy.Customization, error) {
	if _, err := service.GetAccount(tx, acct); err != nil {
		return policy.Customization{}, err
	}
	c, err := store.GetCustomization(tx, acct, lang)
	if errors.Is(err, store.ErrNotFound) {
		return policy.DefaultCustomization(acct, lang), nil
	}
	return c, err
}

func (a *adminService) GetCustomization(ctx context.Context, req *gatehousev1.GetCustomizationRequest) (*gatehousev1.GetCustomizationResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	if len(req.GetLanguage()) > maxLanguageTag {
		v.add("language", "must be at most %d bytes", maxLanguageTag)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	lang := policy.NegotiateLanguage(req.GetLanguage())
	var c policy.Customization
	err := a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		c, err = getCustomization(tx, req.GetAccountId(), lang)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &gatehousev1.GetCustomizationResponse{Customization: customizationToProto(&c)}, nil
}

func (a *adminService) UpdateCustomization(ctx context.Context, req *gatehousev1.UpdateCustomizationRequest) (*gatehousev1.UpdateCustomizationResponse, error) {
	var v violations
	in := req.GetCustomization()
	if in == nil {
		v.add("customization", "is required")
	}
	v.checkID("customization.account_id", in.GetAccountId(), false)
	// A write names its language exactly: negotiating here could silently
	// change the texts of a language the caller did not mean.
	if in.GetLanguage() == "" {
		v.add("customization.language", "is required (one of %s)", strings.Join(policy.Languages, ", "))
	} else if !policy.IsLanguage(in.GetLanguage()) {
		v.add("customization.language", "must be exactly one of %s", strings.Join(policy.Languages, ", "))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var out policy.Customization
	rev, err := a.s.write(ctx, func(tx store.Tx) (err error) {
		out, err = updateCustomizationIn(tx, in, req.GetUpdateMask())
		return err
	})
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&out, rev)
	return &gatehousev1.UpdateCustomizationResponse{Customization: customizationToProto(&out)}, nil
}

// updateCustomizationIn is UpdateCustomization's rules inside a
// transaction (the language already checked); ApplyAccount shares it.
func updateCustomizationIn(tx store.Tx, in *gatehousev1.Customization, mask *fieldmaskpb.FieldMask) (policy.Customization, error) {
	cur, err := getCustomization(tx, in.GetAccountId(), in.GetLanguage())
	if err != nil {
		return cur, err
	}
	if err := service.CheckEtag("customization", cur.AccountID+"/"+cur.Language, in.GetEtag(), cur.Revision); err != nil {
		return cur, err
	}
	p := customizationToProto(&cur)
	if err := applyMask(p, in, mask, customizationMutable); err != nil {
		return cur, err
	}
	if err := validateCustomization(p); err != nil {
		return cur, err
	}
	out := policy.Customization{
		AccountID:      cur.AccountID,
		Language:       cur.Language,
		DisclaimerText: p.GetDisclaimerText(),
		AgentAlias:     p.GetAgentAlias(),
		CustomerAlias:  p.GetCustomerAlias(),
	}
	return out, store.PutCustomization(tx, &out)
}

// validateCustomization checks the texts as they would be written: the
// disclaimer may be empty (show_disclaimer decides whether it is shown), the
// aliases must name someone.
func validateCustomization(c *gatehousev1.Customization) error {
	var v violations
	v.checkText("customization.disclaimer_text", c.GetDisclaimerText(), false, maxDisclaimerText)
	for _, f := range []struct{ field, val string }{
		{"customization.agent_alias", c.GetAgentAlias()},
		{"customization.customer_alias", c.GetCustomerAlias()},
	} {
		if strings.TrimSpace(f.val) == "" {
			v.add(f.field, "is required (1-%d characters, not only spaces)", maxAlias)
			continue
		}
		v.checkText(f.field, f.val, true, maxAlias)
	}
	return v.err()
}
