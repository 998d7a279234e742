package server

import (
	"context"
	"net/url"
	"strings"
	"unicode"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func tokenToProto(t *auth.Token) *gatehousev1.CallerToken {
	return &gatehousev1.CallerToken{Id: t.ID, Name: t.Name, Role: gatehousev1.CallerRole(t.Role), AccountId: t.AccountID,
		CreateTime: timestampOf(t.CreateTime), Revoked: t.Revoked, Revision: t.Revision, CertificateIdentity: t.CertIdentity,
		CertificateIdentityKind: gatehousev1.CertificateIdentityKind(t.IdentityKind())}
}

// maxCertIdentity bounds a certificate identity (a common name is at most
// 64 bytes; URI SANs such as SPIFFE IDs are at most 2048).
const maxCertIdentity = 2048

func (a *adminService) CreateCallerToken(ctx context.Context, req *gatehousev1.CreateCallerTokenRequest) (*gatehousev1.CreateCallerTokenResponse, error) {
	var v violations
	in := req.GetToken()
	if in == nil {
		v.add("token", "is required")
	}
	v.checkText("token.name", in.GetName(), true, maxDisplayName)
	if r := in.GetRole(); r == gatehousev1.CallerRole_CALLER_ROLE_UNSPECIFIED {
		v.add("token.role", "is required (CALLER_ROLE_DECIDER, CALLER_ROLE_ADMIN or CALLER_ROLE_OPERATOR)")
	} else if r < gatehousev1.CallerRole_CALLER_ROLE_DECIDER || r > gatehousev1.CallerRole_CALLER_ROLE_OPERATOR {
		v.add("token.role", "must be CALLER_ROLE_DECIDER, CALLER_ROLE_ADMIN or CALLER_ROLE_OPERATOR")
	}
	v.checkID("token.account_id", in.GetAccountId(), true)
	certID := in.GetCertificateIdentity()
	v.checkText("token.certificate_identity", certID, false, maxCertIdentity)
	if strings.TrimSpace(certID) != certID || strings.ContainsFunc(certID, unicode.IsControl) {
		v.add("token.certificate_identity", "must not have surrounding spaces or control characters")
	}
	kind := auth.CertKind(in.GetCertificateIdentityKind())
	switch {
	case certID == "" && kind != auth.CertKindUnspecified:
		v.add("token.certificate_identity_kind", "is only for a certificate credential (set certificate_identity)")
	case certID == "":
	case kind == auth.CertKindUnspecified:
		kind = auth.InferCertKind(certID)
	}
	validateCertIdentity(&v, kind, certID)
	if err := v.err(); err != nil {
		return nil, err
	}
	id, bearer, hash := auth.NewBearer()
	tok := auth.Token{ID: id, Name: in.GetName(), Role: auth.Role(in.GetRole()), AccountID: in.GetAccountId(), Hash: hash, CreateTime: a.s.now().UTC()}
	if certID != "" {
		// A certificate credential has no secret to hand out.
		bearer, tok.Hash, tok.CertIdentity, tok.CertKind = "", "", certID, kind
	}
	rev, err := a.s.write(ctx, func(tx store.Tx) error {
		return service.CreateToken(tx, &tok)
	})
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&tok, rev)
	return &gatehousev1.CreateCallerTokenResponse{Token: tokenToProto(&tok), Bearer: bearer}, nil
}

// validateCertIdentity checks that value has the shape of an identity of
// kind: a URI SAN is an absolute URI, a DNS SAN a host name (a leading
// "*." wildcard label allowed, as certificates carry it), a common name
// any text.
func validateCertIdentity(v *violations, kind auth.CertKind, value string) {
	const field = "token.certificate_identity"
	switch kind {
	case auth.CertKindURISAN:
		if u, err := url.Parse(value); err != nil || u.Scheme == "" || auth.InferCertKind(value) != auth.CertKindURISAN {
			v.add(field, "must be an absolute URI (scheme:…) for CERTIFICATE_IDENTITY_KIND_URI_SAN")
		}
	case auth.CertKindDNSSAN:
		if !isDNSName(value) {
			v.add(field, "must be a DNS name (labels of letters, digits and \"-\"; \"*.\" first allowed) for CERTIFICATE_IDENTITY_KIND_DNS_SAN")
		}
	}
}

func isDNSName(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

func (a *adminService) ListCallerTokens(ctx context.Context, req *gatehousev1.ListCallerTokensRequest) (*gatehousev1.ListCallerTokensResponse, error) {
	limit, after, err := pageParams(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var list []auth.Token
	var more bool
	err = a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		list, more, err = store.ListTokens(tx, after, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &gatehousev1.ListCallerTokensResponse{}
	for i := range list {
		resp.Tokens = append(resp.Tokens, tokenToProto(&list[i]))
	}
	if more {
		resp.NextPageToken = nextPageToken(more, list[len(list)-1].ID)
	}
	return resp, nil
}

func (a *adminService) RevokeCallerToken(ctx context.Context, req *gatehousev1.RevokeCallerTokenRequest) (*gatehousev1.RevokeCallerTokenResponse, error) {
	var v violations
	v.checkID("id", req.GetId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	var tok auth.Token
	rev, err := a.s.write(ctx, func(tx store.Tx) (err error) {
		tok, err = service.RevokeToken(tx, req.GetId())
		return err
	})
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&tok, rev)
	return &gatehousev1.RevokeCallerTokenResponse{Token: tokenToProto(&tok)}, nil
}
