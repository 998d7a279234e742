// Package auth holds caller identity: bearer tokens (only a SHA-256 hash of
// the secret is stored), certificate credentials, roles, account scope, and
// the caller carried in a request's context. It is pure: no I/O, no gRPC.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"strings"
	"time"
)

// Role is what a caller may do; the values equal the wire enum CallerRole.
type Role int

// Roles. Operator includes every other role.
const (
	RoleUnspecified Role = iota
	RoleDecider
	RoleAdmin
	RoleOperator
)

// String returns the role's lower-case name.
func (r Role) String() string {
	switch r {
	case RoleDecider:
		return "decider"
	case RoleAdmin:
		return "admin"
	case RoleOperator:
		return "operator"
	}
	return "unspecified"
}

// Token is a stored caller credential: a bearer token (Hash set) or a
// certificate credential (CertIdentity set, no secret).
type Token struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      Role   `json:"role"`
	AccountID string `json:"account_id,omitempty"`
	Hash      string `json:"hash,omitempty"`
	// CertIdentity is the value, in the certificate field CertKind names,
	// of the client certificates this credential authenticates.
	CertIdentity string `json:"cert_identity,omitempty"`
	// CertKind is the certificate field CertIdentity names; unset on
	// credentials stored before kinds existed (see IdentityKind).
	CertKind   CertKind  `json:"cert_kind,omitempty"`
	CreateTime time.Time `json:"create_time"`
	Revoked    bool      `json:"revoked,omitempty"`
	Revision   uint64    `json:"revision"`
}

// bearerPrefix starts every bearer string, so that leaked tokens are easy
// to recognise (and to scan for).
const bearerPrefix = "gh_"

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewBearer returns a new token id, the bearer string to hand out once
// ("gh_<id>_<secret>") and the hash to store.
func NewBearer() (id, bearer, hash string) {
	b := make([]byte, 10+32)
	_, _ = rand.Read(b)
	id = "k-" + enc.EncodeToString(b[:10])
	secret := enc.EncodeToString(b[10:])
	return id, bearerPrefix + id + "_" + secret, HashSecret(secret)
}

// ParseBearer splits a bearer string into token id and secret.
func ParseBearer(s string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(s, bearerPrefix)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// HashSecret is the stored form of a secret.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Verify reports whether secret is t's, in constant time, and t is not
// revoked. A certificate credential has no secret: it verifies none.
func (t *Token) Verify(secret string) bool {
	h := HashSecret(secret)
	return !t.Revoked && t.Hash != "" && subtle.ConstantTimeCompare([]byte(h), []byte(t.Hash)) == 1
}

// CertKind is the field of a client certificate a certificate credential
// names; the values equal the wire enum CertificateIdentityKind.
type CertKind int

// Certificate identity kinds.
const (
	CertKindUnspecified CertKind = iota
	CertKindURISAN
	CertKindDNSSAN
	CertKindSubjectCN
	numCertKinds
)

// Valid reports whether k is one of the three kinds.
func (k CertKind) Valid() bool { return k > CertKindUnspecified && k < numCertKinds }

// String returns the kind's short name, as the CLI spells it.
func (k CertKind) String() string {
	switch k {
	case CertKindURISAN:
		return "uri"
	case CertKindDNSSAN:
		return "dns"
	case CertKindSubjectCN:
		return "cn"
	}
	return "unspecified"
}

// InferCertKind is the kind of an identity stored without one: a value
// that starts with a URI scheme (RFC 3986: a letter, then letters, digits,
// "+", "-" or ".", then ":" and something after it) is a URI SAN,
// anything else a subject common name. A DNS SAN is never inferred.
func InferCertKind(identity string) CertKind {
	i := strings.IndexByte(identity, ':')
	if i <= 0 || i == len(identity)-1 {
		return CertKindSubjectCN
	}
	for j := 0; j < i; j++ {
		c := identity[j]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (j == 0 || (c < '0' || c > '9') && c != '+' && c != '-' && c != '.') {
			return CertKindSubjectCN
		}
	}
	return CertKindURISAN
}

// IdentityKind is the kind of t's certificate identity: CertKind, or for a
// credential stored without one, the kind inferred from its shape;
// unspecified for a bearer token.
func (t *Token) IdentityKind() CertKind {
	switch {
	case t.CertIdentity == "":
		return CertKindUnspecified
	case t.CertKind.Valid():
		return t.CertKind
	}
	return InferCertKind(t.CertIdentity)
}

// CertID is a certificate identity with its kind: two identities match
// only when both are equal, so a common name never stands for a SAN of
// the same spelling, nor the other way round.
type CertID struct {
	Kind  CertKind
	Value string
}

// NewCertID returns the identity value of kind k in the form it is
// compared in (DNS names without regard to ASCII case).
func NewCertID(k CertKind, value string) CertID {
	if k == CertKindDNSSAN {
		value = strings.ToLower(value)
	}
	return CertID{Kind: k, Value: value}
}

// CertID returns t's certificate identity with its kind.
func (t *Token) CertID() CertID { return NewCertID(t.IdentityKind(), t.CertIdentity) }

func (id CertID) String() string { return id.Kind.String() + ":" + id.Value }

// CertIdentities returns the identities a verified client certificate
// may be registered under, each with its kind: its subject common name
// (when set), its URI subject alternative names (SPIFFE IDs among them),
// then its DNS subject alternative names, in that order.
func CertIdentities(cert *x509.Certificate) []CertID {
	var ids []CertID
	if cert.Subject.CommonName != "" {
		ids = append(ids, NewCertID(CertKindSubjectCN, cert.Subject.CommonName))
	}
	for _, u := range cert.URIs {
		ids = append(ids, NewCertID(CertKindURISAN, u.String()))
	}
	for _, d := range cert.DNSNames {
		ids = append(ids, NewCertID(CertKindDNSSAN, d))
	}
	return ids
}

// Caller is an authenticated identity.
type Caller struct {
	// Name identifies the caller in logs and the audit log.
	Name string
	// Role is what the caller may do.
	Role Role
	// AccountID scopes the caller to one account; empty for all.
	AccountID string
	// TokenID is the id of the credential (bearer token or certificate
	// credential) the caller authenticated with; empty for callers that
	// need none (Local, the server's own jobs). Long-lived streams look it
	// up on every snapshot so that revoking it ends them.
	TokenID string
}

// Local is the caller of a server that does not authenticate (loopback
// development): an operator for all accounts.
var Local = Caller{Name: "local", Role: RoleOperator}

// Has reports whether c may act in role r; operators may act in every role.
func (c Caller) Has(r Role) bool { return c.Role == r || c.Role == RoleOperator }

// CanAccess reports whether c may touch account acct.
func (c Caller) CanAccess(acct string) bool { return c.AccountID == "" || c.AccountID == acct }

type ctxKey struct{}

// authenticated is what a context carries: the caller, and the state it
// was authenticated against. One value, so that a call's context costs
// one allocation for both.
type authenticated struct {
	caller Caller
	state  any
}

// NewContext returns ctx carrying c.
func NewContext(ctx context.Context, c Caller) context.Context {
	return NewContextAt(ctx, c, nil)
}

// NewContextAt returns ctx carrying c and state, the state of the service
// (the server's decision snapshot) that c was authenticated against, so
// that the rest of the call reads that same state (StateFromContext).
func NewContextAt(ctx context.Context, c Caller, state any) context.Context {
	return context.WithValue(ctx, ctxKey{}, &authenticated{caller: c, state: state})
}

// FromContext returns the caller in ctx, and false when there is none.
func FromContext(ctx context.Context) (Caller, bool) {
	a, ok := ctx.Value(ctxKey{}).(*authenticated)
	if !ok {
		return Caller{}, false
	}
	return a.caller, true
}

// StateFromContext returns the state the caller in ctx was authenticated
// against (NewContextAt); nil when there is none.
func StateFromContext(ctx context.Context) any {
	if a, ok := ctx.Value(ctxKey{}).(*authenticated); ok {
		return a.state
	}
	return nil
}
