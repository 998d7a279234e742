package server

import (
	"context"
	"crypto/x509"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// access says who may call one RPC.
type access struct {
	role auth.Role
	// account is the request field (a dotted path) naming the account the
	// call touches; a caller scoped to another account is refused before
	// the handler runs.
	account string
	// allAccounts: the call is store-wide, so only callers scoped to all
	// accounts may make it (also when account names no account, e.g.
	// ListAuditEvents without account_id).
	allAccounts bool
}

// A call that names a session or a notification by id alone has no
// account field for the table to check: the caller's scope is checked
// where the resource is found, in the snapshot the call decides at
// (snapshotSessionAccess) or in the transaction that reads it
// (service.GetSession, service.CheckOwnedAccess). TestAuthz_EveryRPC
// calls every RPC for another account's resources with a scoped caller
// and requires PERMISSION_DENIED, whichever way the check is made.

const (
	adminSvc    = "/gatehouse.v1.AdminService/"
	sessionSvc  = "/gatehouse.v1.SessionService/"
	decisionSvc = "/gatehouse.v1.DecisionService/"
)

var (
	operator        = access{role: auth.RoleOperator, allAccounts: true}
	adminOf         = func(field string) access { return access{role: auth.RoleAdmin, account: field} }
	deciderSession  = access{role: auth.RoleDecider}
	adminAccountIDs = []string{
		"GetLiveGuideSettings", "GetCustomization", "GenerateCobrowseUrl",
		"CreateAllowlistEntry", "GetAllowlistEntry", "ListAllowlistEntries", "UpdateAllowlistEntry", "DeleteAllowlistEntry",
		"CreatePrivacyRule", "GetPrivacyRule", "ListPrivacyRules", "UpdatePrivacyRule", "DeletePrivacyRule",
		"CreatePortal", "GetPortal", "ListPortals", "UpdatePortal", "DeletePortal",
		"CreateTeam", "GetTeam", "ListTeams", "UpdateTeam", "DeleteTeam",
		"CreateRepresentative", "GetRepresentative", "ListRepresentatives", "UpdateRepresentative", "DeleteRepresentative",
		"CreateBusinessHours", "GetBusinessHours", "ListBusinessHours", "UpdateBusinessHours", "DeleteBusinessHours",
		"TestAllowlistUrl", "GetBusinessHoursStatus",
	}
)

// accessRules is the permission table: every RPC of the API must have an
// entry (a test enumerates the service descriptors), and a method without
// one is refused, so a new RPC cannot slip in unprotected.
var accessRules = func() map[string]access {
	m := map[string]access{
		adminSvc + "CreateAccount":              operator,
		adminSvc + "DeleteAccount":              operator,
		adminSvc + "ListAccounts":               {role: auth.RoleAdmin, allAccounts: true},
		adminSvc + "GetAccount":                 adminOf("id"),
		adminSvc + "UpdateAccount":              adminOf("account.id"),
		adminSvc + "UpdateLiveGuideSettings":    adminOf("settings.account_id"),
		adminSvc + "UpdateCustomization":        adminOf("customization.account_id"),
		adminSvc + "SetCobrowseUrl":             operator,
		adminSvc + "CreateCallerToken":          operator,
		adminSvc + "ListCallerTokens":           operator,
		adminSvc + "RevokeCallerToken":          operator,
		adminSvc + "BackupStore":                operator,
		adminSvc + "ListNotifications":          {role: auth.RoleAdmin, account: "account_id", allAccounts: true},
		adminSvc + "RetryNotification":          {role: auth.RoleAdmin},
		adminSvc + "DeleteNotification":         {role: auth.RoleAdmin},
		adminSvc + "ListAuditEvents":            {role: auth.RoleAdmin, account: "account_id", allAccounts: true},
		adminSvc + "ExportAccount":              adminOf("account_id"),
		adminSvc + "ApplyAccount":               adminOf("document.account.id"),
		decisionSvc + "CheckHypothetical":       {role: auth.RoleDecider, account: "account_id"},
		sessionSvc + "StartSession":             {role: auth.RoleDecider, account: "account_id"},
		sessionSvc + "GetSession":               deciderSession,
		sessionSvc + "ListSessions":             {role: auth.RoleDecider, account: "account_id"},
		sessionSvc + "EndSession":               deciderSession,
		sessionSvc + "InviteExternalSpecialist": deciderSession,
		sessionSvc + "RemoveExternalSpecialist": deciderSession,
		decisionSvc + "CheckFeature":            deciderSession,
		decisionSvc + "CheckFeatures":           deciderSession,
		decisionSvc + "GetSessionPolicy":        deciderSession,
		decisionSvc + "WatchSessionPolicy":      deciderSession,
	}
	for _, name := range adminAccountIDs {
		m[adminSvc+name] = adminOf("account_id")
	}
	return m
}()

// Reflection modes (Options.Reflection).
const (
	// ReflectionPublic serves server reflection to anyone who reaches the
	// port, without a credential.
	ReflectionPublic = "public"
	// ReflectionAuthenticated serves it to callers with a registered
	// credential of any role (the default; without authentication
	// configured every caller has one).
	ReflectionAuthenticated = "authenticated"
	// ReflectionOff does not register the reflection service.
	ReflectionOff = "off"
)

func isHealth(method string) bool     { return strings.HasPrefix(method, "/grpc.health.v1.Health/") }
func isReflection(method string) bool { return strings.HasPrefix(method, "/grpc.reflection.") }

// openMethod reports whether method needs no caller: health checks, and
// reflection when it is public.
func (s *Server) openMethod(method string) bool {
	return isHealth(method) || (isReflection(method) && s.reflection == ReflectionPublic)
}

// authenticate finds the caller of a request: the bearer token of its
// authorization header or, without one, the certificate credential of its
// verified client certificate. Without authentication configured every
// caller is auth.Local (the daemon refuses that on a non-loopback address
// unless told --insecure or --tls-client-ca).
func (s *Server) authenticate(ctx context.Context, snap *policy.Snapshot) (auth.Caller, error) {
	if !s.authOn {
		return auth.Local, nil
	}
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vals) == 0 {
		if cert := verifiedClientCert(ctx); cert != nil {
			return certCaller(snap, cert)
		}
	}
	if len(vals) != 1 {
		return auth.Caller{}, errs.New(errs.Unauthenticated, `send one "authorization: Bearer <token>" header, or a registered client certificate`)
	}
	scheme, bearer, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "bearer") {
		return auth.Caller{}, errs.New(errs.Unauthenticated, `the authorization header must be "Bearer <token>"`)
	}
	id, secret, ok := auth.ParseBearer(strings.TrimSpace(bearer))
	if !ok {
		return auth.Caller{}, errs.New(errs.Unauthenticated, "the bearer token is not a Gatehouse token (those read gh_k-…_…)")
	}
	tok := snap.Token(id)
	if tok == nil || !tok.Verify(secret) {
		return auth.Caller{}, errs.New(errs.Unauthenticated, "unknown or revoked token")
	}
	return auth.Caller{Name: tok.Name + " (" + tok.ID + ")", Role: tok.Role, AccountID: tok.AccountID, TokenID: tok.ID}, nil
}

// verifiedClientCert returns the client certificate of a mutual TLS
// connection, once the handshake has verified it against the client CA;
// nil otherwise.
func verifiedClientCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	if _, ok := p.AuthInfo.(inProcessAuthInfo); ok {
		// The HTTP gateway: its HTTP server verified the certificate
		// with the same client CA.
		return gatewayClientCert(ctx)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return info.State.VerifiedChains[0][0]
}

// certCaller is the caller registered for a verified client certificate:
// the first of its identities (common name, then URI SANs, then DNS SANs)
// that an unrevoked certificate credential of the same kind holds. A
// credential for a common name never matches a SAN of that spelling, nor
// the other way round.
func certCaller(snap *policy.Snapshot, cert *x509.Certificate) (auth.Caller, error) {
	ids := auth.CertIdentities(cert)
	for _, id := range ids {
		if tok := snap.CertToken(id); tok != nil {
			return auth.Caller{Name: tok.Name + " (" + tok.ID + ")", Role: tok.Role, AccountID: tok.AccountID, TokenID: tok.ID}, nil
		}
	}
	return auth.Caller{}, errs.New(errs.Unauthenticated,
		"client certificate %q is not registered as a caller (identities %q); create a token with that certificate_identity and kind, or send a bearer token",
		cert.Subject.String(), certIDStrings(ids))
}

func certIDStrings(ids []auth.CertID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// authorize authenticates the caller of method and applies its access
// rule to req (nil for streams, whose rules name no request field).
//
// It reads the decision snapshot once, for the whole call: the caller is
// authenticated against it, and the returned context carries both (see
// callSnapshot), so that the load limits and the handler read the same
// snapshot and a swap in between cannot make a call mix two.
func (s *Server) authorize(ctx context.Context, method string, req any) (context.Context, error) {
	if s.openMethod(method) {
		return ctx, nil
	}
	snap := s.snaps.Current()
	if isReflection(method) {
		// Reflection needs a credential, of any role.
		caller, err := s.authenticate(ctx, snap)
		if err != nil {
			return nil, err
		}
		return auth.NewContextAt(ctx, caller, snap), nil
	}
	rule, ok := s.rules[method]
	if !ok {
		return nil, errs.Denied("%s has no access rule", method)
	}
	caller, err := s.authenticate(ctx, snap)
	if err != nil {
		return nil, err
	}
	if !caller.Has(rule.role) {
		return nil, errs.Denied("%s needs the %s role; caller %q is %s", method, rule.role, caller.Name, caller.Role)
	}
	acct := ""
	if m, ok := req.(proto.Message); ok && rule.account != "" {
		acct = fieldString(m, rule.account)
	}
	switch {
	case acct != "" && !caller.CanAccess(acct):
		return nil, errs.Denied("caller %q may not access account %q", caller.Name, acct)
	case acct == "" && rule.allAccounts && caller.AccountID != "":
		return nil, errs.Denied("%s is store-wide; caller %q is scoped to account %q", method, caller.Name, caller.AccountID)
	}
	return auth.NewContextAt(ctx, caller, snap), nil
}

// callSnapshot returns the snapshot the call's caller was authenticated
// against (authorize), or the current one for a context that carries
// none (a handler called without the interceptors).
func (s *Server) callSnapshot(ctx context.Context) *policy.Snapshot {
	if snap, ok := auth.StateFromContext(ctx).(*policy.Snapshot); ok {
		return snap
	}
	return s.snaps.Current()
}

// fieldString reads a string field at a dotted path of m ("" when unset).
func fieldString(m proto.Message, path string) string {
	r := m.ProtoReflect()
	parts := strings.Split(path, ".")
	for i, name := range parts {
		fd := r.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return ""
		}
		if i == len(parts)-1 {
			if fd.Kind() != protoreflect.StringKind {
				return ""
			}
			return r.Get(fd).String()
		}
		if fd.Kind() != protoreflect.MessageKind || !r.Has(fd) {
			return ""
		}
		r = r.Get(fd).Message()
	}
	return ""
}

// callerStream carries the authorized context into a stream handler.
type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *callerStream) Context() context.Context { return c.ctx }

// RecvMsg answers a message the codec refused while decoding it.
func (c *callerStream) RecvMsg(m any) error {
	if err := c.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	takeDecodeCost(m) // streams are not charged (callerCPU)
	return takeRequestError(m)
}

// snapshotSessionAccess applies service.CheckSessionAccess to a session of snap,
// and to one whose record cannot be read by the account its key names; an
// unknown session is left to the caller (NOT_FOUND).
func snapshotSessionAccess(ctx context.Context, snap *policy.Snapshot, id string) error {
	if c, ok := auth.FromContext(ctx); ok && c.AccountID == "" {
		// A caller of every account may access any session: no lookup.
		return nil
	}
	if sess := snap.Session(id); sess != nil {
		return service.CheckSessionAccess(ctx, sess)
	}
	if u, ok := snap.UnreadableSession(id); ok {
		return service.CheckOwnedAccess(ctx, "session", id, u.AccountID)
	}
	return nil
}
