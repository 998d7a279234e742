package server

import (
	"context"
	"crypto/x509"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
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
	// session: the call names a session; the handler checks the caller may
	// access the session's account once it has found the session.
	session bool
	// owned: the call names a resource by id alone (a notification); the
	// handler checks the caller may access its account once found.
	owned bool
}

const (
	adminSvc    = "/gatehouse.v1.AdminService/"
	sessionSvc  = "/gatehouse.v1.SessionService/"
	decisionSvc = "/gatehouse.v1.DecisionService/"
)

var (
	operator        = access{role: auth.RoleOperator, allAccounts: true}
	adminOf         = func(field string) access { return access{role: auth.RoleAdmin, account: field} }
	deciderSession  = access{role: auth.RoleDecider, session: true}
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
		adminSvc + "RetryNotification":          {role: auth.RoleAdmin, owned: true},
		adminSvc + "DeleteNotification":         {role: auth.RoleAdmin, owned: true},
		adminSvc + "ListAuditEvents":            {role: auth.RoleAdmin, account: "account_id", allAccounts: true},
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

func permissionDenied(format string, args ...any) error {
	return status.Errorf(codes.PermissionDenied, format, args...)
}

// authenticate finds the caller of a request: the bearer token of its
// authorization header or, without one, the certificate credential of its
// verified client certificate. Without authentication configured every
// caller is auth.Local (the daemon refuses that on a non-loopback address
// unless told --insecure or --tls-client-ca).
func (s *Server) authenticate(ctx context.Context) (auth.Caller, error) {
	if !s.authOn {
		return auth.Local, nil
	}
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vals) == 0 {
		if cert := verifiedClientCert(ctx); cert != nil {
			return s.certCaller(cert)
		}
	}
	if len(vals) != 1 {
		return auth.Caller{}, status.Error(codes.Unauthenticated, `send one "authorization: Bearer <token>" header, or a registered client certificate`)
	}
	scheme, bearer, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "bearer") {
		return auth.Caller{}, status.Error(codes.Unauthenticated, `the authorization header must be "Bearer <token>"`)
	}
	id, secret, ok := auth.ParseBearer(strings.TrimSpace(bearer))
	if !ok {
		return auth.Caller{}, status.Error(codes.Unauthenticated, "the bearer token is not a Gatehouse token (those read gh_k-…_…)")
	}
	tok := s.snaps.Current().Token(id)
	if tok == nil || !tok.Verify(secret) {
		return auth.Caller{}, status.Error(codes.Unauthenticated, "unknown or revoked token")
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
func (s *Server) certCaller(cert *x509.Certificate) (auth.Caller, error) {
	ids := auth.CertIdentities(cert)
	snap := s.snaps.Current()
	for _, id := range ids {
		if tok := snap.CertToken(id); tok != nil {
			return auth.Caller{Name: tok.Name + " (" + tok.ID + ")", Role: tok.Role, AccountID: tok.AccountID, TokenID: tok.ID}, nil
		}
	}
	return auth.Caller{}, status.Errorf(codes.Unauthenticated,
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
func (s *Server) authorize(ctx context.Context, method string, req any) (context.Context, error) {
	if s.openMethod(method) {
		return ctx, nil
	}
	if isReflection(method) {
		// Reflection needs a credential, of any role.
		caller, err := s.authenticate(ctx)
		if err != nil {
			return nil, err
		}
		return auth.NewContext(ctx, caller), nil
	}
	rule, ok := s.rules[method]
	if !ok {
		return nil, permissionDenied("%s has no access rule", method)
	}
	caller, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if !caller.Has(rule.role) {
		return nil, permissionDenied("%s needs the %s role; caller %q is %s", method, rule.role, caller.Name, caller.Role)
	}
	acct := ""
	if m, ok := req.(proto.Message); ok && rule.account != "" {
		acct = fieldString(m, rule.account)
	}
	switch {
	case acct != "" && !caller.CanAccess(acct):
		return nil, permissionDenied("caller %q may not access account %q", caller.Name, acct)
	case acct == "" && rule.allAccounts && caller.AccountID != "":
		return nil, permissionDenied("%s is store-wide; caller %q is scoped to account %q", method, caller.Name, caller.AccountID)
	}
	return auth.NewContext(ctx, caller), nil
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

// checkSessionAccess refuses a caller scoped to another account than the
// session's. Handlers of session-addressed RPCs call it once they have
// found the session.
func checkSessionAccess(ctx context.Context, sess *policy.Session) error {
	return checkOwnedAccess(ctx, "session", sess.ID, sess.AccountID)
}

// tenantSince returns, for a caller scoped to one account, when that
// account was created: records of the account's id that are older belong
// to an earlier account of the same id, deleted since, and are not the
// caller's to see. For a caller scoped to all accounts it is zero.
func tenantSince(ctx context.Context, tx store.ReadTx, acct string) (time.Time, error) {
	caller, ok := auth.FromContext(ctx)
	if unscoped := ok && caller.AccountID == ""; unscoped || acct == "" {
		return time.Time{}, nil
	}
	a, err := getAccount(tx, acct)
	if err != nil {
		return time.Time{}, err
	}
	return a.CreateTime, nil
}

// checkOwnedAccess refuses a caller scoped to another account than acct,
// the account of the resource kind/id. Handlers of RPCs that name a
// resource by id alone call it once they have found the resource.
func checkOwnedAccess(ctx context.Context, kind, id, acct string) error {
	caller, ok := auth.FromContext(ctx)
	if !ok {
		return permissionDenied("no caller")
	}
	if !caller.CanAccess(acct) {
		return permissionDenied("caller %q may not access %s %q", caller.Name, kind, id)
	}
	return nil
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
	return takeRequestError(m)
}

// snapshotSessionAccess applies checkSessionAccess to a session of snap,
// and to one whose record cannot be read by the account its key names; an
// unknown session is left to the caller (NOT_FOUND).
func snapshotSessionAccess(ctx context.Context, snap *policy.Snapshot, id string) error {
	if c, ok := auth.FromContext(ctx); ok && c.AccountID == "" {
		// A caller of every account may access any session: no lookup.
		return nil
	}
	if sess := snap.Session(id); sess != nil {
		return checkSessionAccess(ctx, sess)
	}
	if u, ok := snap.UnreadableSession(id); ok {
		return checkOwnedAccess(ctx, "session", id, u.AccountID)
	}
	return nil
}
