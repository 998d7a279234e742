package client_test

import (
	"crypto/tls"
	"errors"
	"testing"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig"
	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig/tlstest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// TestDial_MutualTLS: WithTLS with a client certificate registered as a
// decider credential calls a TLS server with authentication on without
// any token; WithTLS and a token work together; the default transport is
// TLS, not plaintext.
func TestDial_MutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCert, serverKey := tlstest.WriteSelfSigned(t, dir, "gatehouse-test")
	ca := tlstest.NewCA(t, dir, "callers")
	srvTLS, err := tlsconfig.Server(tlsconfig.Files{Cert: serverCert, Key: serverKey, ClientCA: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	g := mustStart(t, true, func(o *server.Options) { o.TLS = srvTLS })
	roots := tlstest.Pool(t, serverCert)

	// The server requires a client certificate; one that is not registered
	// authenticates nobody, so the token decides.
	stranger := func() *tls.Config {
		return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{ca.IssueClient(t, "stranger")}}
	}
	// Set up over TLS as the operator.
	conn, err := grpc.NewClient(g.addr, grpc.WithTransportCredentials(credentials.NewTLS(stranger())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	g.admin = gatehousev1.NewAdminServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer "+g.bearer)
	if err := g.fixture(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := g.admin.CreateCallerToken(ctx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
		Name: "session server", Role: gatehousev1.CallerRole_CALLER_ROLE_DECIDER, AccountId: "acme", CertificateIdentity: "session-server"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := g.admin.CreateCallerToken(ctx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
		Name: "other server", Role: gatehousev1.CallerRole_CALLER_ROLE_DECIDER, AccountId: "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	start := client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeID: "alice", CustomerID: "c"}

	mtls := dial0(t, g.addr, client.WithTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{ca.IssueClient(t, "session-server")}}))
	s, err := mtls.StartSession(ctxT(t), start)
	if err != nil {
		t.Fatalf("StartSession with a registered client certificate: %v", err)
	}
	if _, err := mtls.Check(ctxT(t), chatOf(s.GetId())); err != nil {
		t.Fatalf("Check with a registered client certificate: %v", err)
	}

	withToken := dial0(t, g.addr, client.WithTLS(stranger()), client.WithBearerToken(tok.GetBearer()))
	if _, err := withToken.GetSession(ctxT(t), s.GetId()); err != nil {
		t.Fatalf("GetSession with TLS and a token: %v", err)
	}
	noCred := dial0(t, g.addr, client.WithTLS(stranger()))
	if _, err := noCred.GetSession(ctxT(t), s.GetId()); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("GetSession over TLS with an unregistered certificate and no token = %v, want ErrUnauthenticated", err)
	}

	// The default transport is TLS with the system roots, which do not
	// know this server: the call fails.
	def := dial0(t, g.addr, client.WithBearerToken(tok.GetBearer()))
	if _, err := def.GetSession(ctxT(t), s.GetId()); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("GetSession with the default transport to a server of an unknown CA = %v, want ErrUnavailable", err)
	}
	// Nor does it fall back to plaintext: a plaintext server sees no call.
	p := startPeer(t, nil)
	if _, err := dial0(t, p.addr).Check(ctxT(t), check); err == nil || len(p.seen()) != 0 {
		t.Fatalf("default transport to a plaintext server: err %v, %d calls arrived; want a failure and none", err, len(p.seen()))
	}
}

func dial0(t testing.TB, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Dial(addr, opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestLocalSession_CertificateRevoked: when the caller's credential is a
// client certificate, revoking the token it is registered under ends the
// policy watch as a revoked bearer token does: local answers stop at once,
// as denials, never allows.
func TestLocalSession_CertificateRevoked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCert, serverKey := tlstest.WriteSelfSigned(t, dir, "gatehouse-test")
	ca := tlstest.NewCA(t, dir, "callers")
	srvTLS, err := tlsconfig.Server(tlsconfig.Files{Cert: serverCert, Key: serverKey, ClientCA: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	g := mustStart(t, true, func(o *server.Options) { o.TLS = srvTLS })
	roots := tlstest.Pool(t, serverCert)
	conn, err := grpc.NewClient(g.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{ca.IssueClient(t, "operator-side")}})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	g.admin = gatehousev1.NewAdminServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer "+g.bearer)
	if err := g.fixture(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err := g.admin.CreateCallerToken(ctx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
		Name: "session server", Role: gatehousev1.CallerRole_CALLER_ROLE_DECIDER, AccountId: "acme", CertificateIdentity: "session-server"}})
	if err != nil {
		t.Fatal(err)
	}
	c := dial0(t, g.addr, client.WithTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{ca.IssueClient(t, "session-server")}}))
	s, err := c.StartSession(ctxT(t), client.StartRequest{AccountID: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE,
		RepresentativeID: "alice", CustomerID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	ls := openLocal(t, c, s.GetId(), agent, answersOnly)
	r := client.CheckRequest{Actor: agent, Feature: gatehousev1.Feature_FEATURE_CUSTOMER_SCREEN_SHARING}
	before, err := ls.Check(ctxT(t), r)
	if err != nil || ls.Stats().Local != 1 {
		t.Fatalf("before: %+v, %v, %+v; want a local answer", before, err, ls.Stats())
	}
	if _, err := g.admin.RevokeCallerToken(ctx, &gatehousev1.RevokeCallerTokenRequest{Id: tok.GetToken().GetId()}); err != nil {
		t.Fatal(err)
	}
	if err := ls.WaitClosed(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	d, err := ls.Check(ctxT(t), r)
	if d.Allowed || d.Rule != client.RulePolicyRevoked || !errors.Is(err, client.ErrUnauthenticated) || ls.Stats().Remote != 0 {
		t.Fatalf("after: %+v, %v, %+v; want a %s denial with ErrUnauthenticated", d, err, ls.Stats(), client.RulePolicyRevoked)
	}
}
