package server

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig"
	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig/tlstest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
)

// certClients are the clients of one connection made with one client
// certificate.
type certClients struct {
	admin    gatehousev1.AdminServiceClient
	sessions gatehousev1.SessionServiceClient
	decide   gatehousev1.DecisionServiceClient
}

// TestAuthz_ClientCertificates: with authentication on and mutual TLS, a
// verified client certificate whose common name or URI SAN is registered
// as a certificate credential is that caller, with its role and account
// scope; an unregistered or revoked one is UNAUTHENTICATED; a bearer token
// sent over the same connection takes precedence.
func TestAuthz_ClientCertificates(t *testing.T) {
	t.Parallel()
	ce := startCertEnv(t)
	ca, op, dialCert := ce.ca, ce.op, ce.dial

	// The operator's console has a certificate nobody registered; its
	// bearer token is what counts.
	console := dialCert(ca.IssueClient(t, "ops-console"))
	opCtx := withToken(ctxT(t), op)
	sessions := map[string]string{}
	for _, acct := range []string{"a", "b"} {
		if _, err := console.admin.CreateAccount(opCtx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: acct, DisplayName: acct}}); err != nil {
			t.Fatalf("operator bearer over an unregistered certificate: %v", err)
		}
		if _, err := console.admin.CreateRepresentative(opCtx, &gatehousev1.CreateRepresentativeRequest{AccountId: acct,
			Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}}); err != nil {
			t.Fatal(err)
		}
		resp, err := console.sessions.StartSession(opCtx, &gatehousev1.StartSessionRequest{AccountId: acct,
			Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
		if err != nil {
			t.Fatal(err)
		}
		sessions[acct] = resp.GetSession().GetId()
	}
	register := func(name string, role gatehousev1.CallerRole, acct, identity string) (*gatehousev1.CreateCallerTokenResponse, error) {
		return console.admin.CreateCallerToken(opCtx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
			Name: name, Role: role, AccountId: acct, CertificateIdentity: identity}})
	}
	const spiffe = "spiffe://example.org/session-server"
	created, err := register("session servers of a", gatehousev1.CallerRole_CALLER_ROLE_DECIDER, "a", spiffe)
	if err != nil {
		t.Fatal(err)
	}
	if created.GetBearer() != "" || created.GetToken().GetCertificateIdentity() != spiffe {
		t.Fatalf("certificate credential: bearer %q, identity %q; want no bearer and %q", created.GetBearer(), created.GetToken().GetCertificateIdentity(), spiffe)
	}
	_, err = register("again", gatehousev1.CallerRole_CALLER_ROLE_ADMIN, "", spiffe)
	wantCode(t, err, codes.AlreadyExists)
	_, err = register("spaces", gatehousev1.CallerRole_CALLER_ROLE_ADMIN, "", " padded")
	wantInvalid(t, err, "token.certificate_identity")
	_, err = register("control", gatehousev1.CallerRole_CALLER_ROLE_ADMIN, "", "a\nb")
	wantInvalid(t, err, "token.certificate_identity")
	if _, err := register("admin tool of a", gatehousev1.CallerRole_CALLER_ROLE_ADMIN, "a", "admin-tool"); err != nil {
		t.Fatal(err)
	}

	check := func(c certClients, sess string) error {
		_, err := c.decide.CheckFeature(ctxT(t), &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
		return err
	}
	// Registered by URI SAN; the common name is not registered.
	server := dialCert(ca.IssueClient(t, "ss-host-17", spiffe))
	if err := check(server, sessions["a"]); err != nil {
		t.Fatalf("registered certificate, own account: %v", err)
	}
	wantCode(t, check(server, sessions["b"]), codes.PermissionDenied)
	_, err = server.admin.GetAccount(ctxT(t), &gatehousev1.GetAccountRequest{Id: "a"})
	wantCode(t, err, codes.PermissionDenied)

	// Registered by common name.
	tool := dialCert(ca.IssueClient(t, "admin-tool"))
	if _, err := tool.admin.GetAccount(ctxT(t), &gatehousev1.GetAccountRequest{Id: "a"}); err != nil {
		t.Fatalf("admin certificate, own account: %v", err)
	}
	_, err = tool.admin.GetAccount(ctxT(t), &gatehousev1.GetAccountRequest{Id: "b"})
	wantCode(t, err, codes.PermissionDenied)
	wantCode(t, check(tool, sessions["a"]), codes.PermissionDenied)

	// Unregistered: refused, and told why.
	stranger := dialCert(ca.IssueClient(t, "stranger", "spiffe://example.org/other"))
	st := wantCode(t, check(stranger, sessions["a"]), codes.Unauthenticated)
	if !strings.Contains(st.Message(), "not registered") || !strings.Contains(st.Message(), "stranger") {
		t.Errorf("unregistered certificate: message %q does not say which certificate is not registered", st.Message())
	}
	// A bearer token sent over a registered certificate's connection wins:
	// a garbage one is refused, not ignored in favour of the certificate.
	_, err = server.decide.CheckFeature(withToken(ctxT(t), "gh_nope_nope"), &gatehousev1.CheckFeatureRequest{SessionId: sessions["a"], Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	wantCode(t, err, codes.Unauthenticated)

	// Revoked: refused at once; the identity can then be registered again.
	if _, err := console.admin.RevokeCallerToken(opCtx, &gatehousev1.RevokeCallerTokenRequest{Id: created.GetToken().GetId()}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, check(server, sessions["a"]), codes.Unauthenticated)
	if _, err := register("session servers of b", gatehousev1.CallerRole_CALLER_ROLE_DECIDER, "b", spiffe); err != nil {
		t.Fatalf("register a revoked identity again: %v", err)
	}
	if err := check(server, sessions["b"]); err != nil {
		t.Fatalf("re-registered certificate, its new account: %v", err)
	}
	wantCode(t, check(server, sessions["a"]), codes.PermissionDenied)

	// Listing shows the identity, never a secret.
	list, err := console.admin.ListCallerTokens(opCtx, &gatehousev1.ListCallerTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	identities := 0
	for _, tok := range list.GetTokens() {
		if tok.GetCertificateIdentity() != "" {
			identities++
		}
	}
	if identities != 3 {
		t.Errorf("ListCallerTokens shows %d certificate credentials; want 3 (one revoked)", identities)
	}
}

// certEnv is a server with authentication and mutual TLS, an operator
// bearer, and a way to dial it with a client certificate of the test CA.
type certEnv struct {
	e    *testEnv
	ca   *tlstest.CA
	op   string
	dial func(tls.Certificate) certClients
}

func startCertEnv(t *testing.T) *certEnv {
	t.Helper()
	dir := t.TempDir()
	serverCert, serverKey := tlstest.WriteSelfSigned(t, dir, "gatehouse-test")
	ca := tlstest.NewCA(t, dir, "callers")
	tlsCfg, err := tlsconfig.Server(tlsconfig.Files{Cert: serverCert, Key: serverKey, ClientCA: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	e := MustStart(t, "", func(o *Options) { o.Authenticate = true; o.TLS = tlsCfg })
	op, _, err := service.BootstrapOperatorToken(context.Background(), e.store, "bootstrap", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.snaps.WaitFor(ctxT(t), e.store.Revision()); err != nil {
		t.Fatal(err)
	}
	roots := tlstest.Pool(t, serverCert)
	dial := func(cert tls.Certificate) certClients {
		t.Helper()
		conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return certClients{gatehousev1.NewAdminServiceClient(conn), gatehousev1.NewSessionServiceClient(conn), gatehousev1.NewDecisionServiceClient(conn)}
	}
	return &certEnv{e: e, ca: ca, op: op, dial: dial}
}

// certWith issues a certificate holding value in the field of kind only
// (the common name is empty unless that is the field).
func (ce *certEnv) certWith(t *testing.T, kind gatehousev1.CertificateIdentityKind, value string) tls.Certificate {
	t.Helper()
	switch kind {
	case gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN:
		return ce.ca.IssueClientSANs(t, value, nil, nil)
	case gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_URI_SAN:
		return ce.ca.IssueClientSANs(t, "", []string{value}, nil)
	case gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN:
		return ce.ca.IssueClientSANs(t, "", nil, []string{value})
	}
	t.Fatalf("no certificate field for %v", kind)
	return tls.Certificate{}
}

// whoAmI calls GetAccount with a certificate alone and returns the error
// (nil: the certificate authenticated as an admin of account "acme").
func whoAmI(t *testing.T, c certClients) error {
	_, err := c.admin.GetAccount(ctxT(t), &gatehousev1.GetAccountRequest{Id: "acme"})
	return err
}

var certKinds = []gatehousev1.CertificateIdentityKind{
	gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN,
	gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_URI_SAN,
	gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN,
}

// TestAuthz_CertificateIdentityKinds: a certificate credential matches
// only the certificate field its kind names. For every pair (credential
// kind, certificate field), a real TLS client certificate holding the
// credential's value in that field authenticates exactly when the two
// are the same; the same value may be registered once per kind, and each
// registration answers only for its own field.
func TestAuthz_CertificateIdentityKinds(t *testing.T) {
	t.Parallel()
	ce := startCertEnv(t)
	opCtx := withToken(ctxT(t), ce.op)
	console := ce.dial(ce.ca.IssueClient(t, "console-unregistered"))
	if _, err := console.admin.CreateAccount(opCtx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}); err != nil {
		t.Fatal(err)
	}
	register := func(kind gatehousev1.CertificateIdentityKind, value, acct string) (*gatehousev1.CallerToken, error) {
		resp, err := console.admin.CreateCallerToken(opCtx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
			Name: "cred", Role: gatehousev1.CallerRole_CALLER_ROLE_ADMIN, AccountId: acct, CertificateIdentity: value, CertificateIdentityKind: kind}})
		return resp.GetToken(), err
	}
	// Values a certificate can carry in every field, one per kind.
	values := map[gatehousev1.CertificateIdentityKind]string{
		gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN: "ops-console",
		gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_URI_SAN:    "spiffe://example.org/session-server",
		gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN:    "console.example.org",
	}
	for _, k := range certKinds {
		tok, err := register(k, values[k], "acme")
		if err != nil {
			t.Fatalf("register %v %q: %v", k, values[k], err)
		}
		if tok.GetCertificateIdentityKind() != k {
			t.Fatalf("registered kind %v, got back %v", k, tok.GetCertificateIdentityKind())
		}
	}
	for _, credKind := range certKinds {
		for _, field := range certKinds {
			v := values[credKind]
			err := whoAmI(t, ce.dial(ce.certWith(t, field, v)))
			if field == credKind {
				if err != nil {
					t.Errorf("credential %v %q, certificate %v field: %v; want accepted", credKind, v, field, err)
				}
				continue
			}
			if statusCode(err) != codes.Unauthenticated {
				t.Errorf("credential %v %q, certificate %v field: got %v (%v); want UNAUTHENTICATED", credKind, v, field, statusCode(err), err)
			}
		}
	}
	// DNS SANs compare without regard to ASCII case.
	if err := whoAmI(t, ce.dial(ce.certWith(t, gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN, "Console.EXAMPLE.org"))); err != nil {
		t.Errorf("DNS SAN in another case: %v", err)
	}
	// The same value once per kind: each answers only for its field, with
	// its own scope.
	for _, acct := range []string{"b1", "b2"} {
		if _, err := console.admin.CreateAccount(opCtx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: acct, DisplayName: acct}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := register(gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN, "shared-name", "b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := register(gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN, "shared-name", "b2"); err != nil {
		t.Fatalf("the same value as a DNS SAN: %v", err)
	}
	_, err := register(gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN, "shared-name", "b2")
	wantCode(t, err, codes.AlreadyExists)
	byCN := ce.dial(ce.certWith(t, gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN, "shared-name"))
	byDNS := ce.dial(ce.certWith(t, gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN, "shared-name"))
	for _, c := range []struct {
		who  certClients
		acct string
		ok   bool
	}{{byCN, "b1", true}, {byCN, "b2", false}, {byDNS, "b2", true}, {byDNS, "b1", false}} {
		_, err := c.who.admin.GetAccount(ctxT(t), &gatehousev1.GetAccountRequest{Id: c.acct})
		if (err == nil) != c.ok {
			t.Errorf("shared-name, account %s: %v, want ok=%v", c.acct, err, c.ok)
		}
	}

	// Shapes are checked per kind; a kind without an identity is refused.
	for _, bad := range []struct {
		kind  gatehousev1.CertificateIdentityKind
		value string
		field string
	}{
		{gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_URI_SAN, "ops-console", "token.certificate_identity"},
		{gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN, "spiffe://example.org/x", "token.certificate_identity"},
		{gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN, "two words", "token.certificate_identity"},
		{gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN, "", "token.certificate_identity_kind"},
	} {
		_, err := register(bad.kind, bad.value, "")
		wantInvalid(t, err, bad.field)
	}
}

// TestAuthz_CertificateIdentityInferredKind: a credential created without
// a kind, or stored before kinds existed (no kind in its record), has the
// kind its value's shape gives — a URI scheme makes a URI SAN, anything
// else a common name — and matches only that field.
func TestAuthz_CertificateIdentityInferredKind(t *testing.T) {
	t.Parallel()
	ce := startCertEnv(t)
	opCtx := withToken(ctxT(t), ce.op)
	console := ce.dial(ce.ca.IssueClient(t, "console-unregistered"))
	if _, err := console.admin.CreateAccount(opCtx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}); err != nil {
		t.Fatal(err)
	}
	const (
		cnValue  = "ops-console"
		uriValue = "spiffe://example.org/session-server"
	)
	resp, err := console.admin.CreateCallerToken(opCtx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
		Name: "new", Role: gatehousev1.CallerRole_CALLER_ROLE_ADMIN, AccountId: "acme", CertificateIdentity: cnValue}})
	if err != nil {
		t.Fatal(err)
	}
	if k := resp.GetToken().GetCertificateIdentityKind(); k != gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN {
		t.Fatalf("%q created without a kind: kind %v, want SUBJECT_CN", cnValue, k)
	}
	// A credential as stored before kinds existed.
	if _, err := ce.e.store.Update(ctxT(t), func(tx store.Tx) error {
		return store.PutToken(tx, &auth.Token{ID: "k-legacy", Name: "legacy", Role: auth.RoleAdmin, AccountID: "acme", CertIdentity: uriValue, CreateTime: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ce.e.srv.snaps.WaitFor(ctxT(t), ce.e.store.Revision()); err != nil {
		t.Fatal(err)
	}
	list, err := console.admin.ListCallerTokens(opCtx, &gatehousev1.ListCallerTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range list.GetTokens() {
		if tok.GetId() == "k-legacy" && tok.GetCertificateIdentityKind() != gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_URI_SAN {
			t.Fatalf("legacy credential %q listed with kind %v, want URI_SAN", uriValue, tok.GetCertificateIdentityKind())
		}
	}
	for _, c := range []struct {
		value string
		field gatehousev1.CertificateIdentityKind
		ok    bool
	}{
		{cnValue, gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN, true},
		{cnValue, gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_URI_SAN, false},
		{cnValue, gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN, false},
		{uriValue, gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_URI_SAN, true},
		{uriValue, gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN, false},
		{uriValue, gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN, false},
	} {
		err := whoAmI(t, ce.dial(ce.certWith(t, c.field, c.value)))
		if c.ok && err != nil {
			t.Errorf("%q in the %v field: %v; want accepted", c.value, c.field, err)
		}
		if !c.ok && statusCode(err) != codes.Unauthenticated {
			t.Errorf("%q in the %v field: got %v (%v); want UNAUTHENTICATED", c.value, c.field, statusCode(err), err)
		}
	}
	// The legacy URI credential holds its identity as a URI SAN: a second
	// URI SAN credential for it is refused, a common name one is not.
	_, err = console.admin.CreateCallerToken(opCtx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
		Name: "dup", Role: gatehousev1.CallerRole_CALLER_ROLE_ADMIN, CertificateIdentity: uriValue}})
	wantCode(t, err, codes.AlreadyExists)
}
