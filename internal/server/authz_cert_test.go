package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
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
	dir := t.TempDir()
	serverCert, serverKey := tlstest.WriteSelfSigned(t, dir, "gatehouse-test")
	ca := tlstest.NewCA(t, dir, "callers")
	tlsCfg, err := tlsconfig.Server(tlsconfig.Files{Cert: serverCert, Key: serverKey, ClientCA: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	e := MustStart(t, "", func(o *Options) { o.Authenticate = true; o.TLS = tlsCfg })
	op, _, err := BootstrapOperatorToken(context.Background(), e.store, "bootstrap", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.snaps.WaitFor(ctxT(t), e.store.Revision()); err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(serverCert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	dialCert := func(cert tls.Certificate) certClients {
		t.Helper()
		conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return certClients{gatehousev1.NewAdminServiceClient(conn), gatehousev1.NewSessionServiceClient(conn), gatehousev1.NewDecisionServiceClient(conn)}
	}

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
