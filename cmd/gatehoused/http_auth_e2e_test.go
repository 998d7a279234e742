//go:build unix

package main

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig/tlstest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// TestHTTP_AuthenticationAsGRPC: with --auth token and mutual TLS, an HTTP
// caller is who its bearer token or its registered client certificate
// says, with the same permissions and audit as over gRPC; no header makes
// it someone else.
func TestHTTP_AuthenticationAsGRPC(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCert, serverKey := tlstest.WriteSelfSigned(t, dir, "gatehouse-test")
	ca := tlstest.NewCA(t, dir, "callers")
	tokenFile := filepath.Join(dir, "operator.token")
	d := start(t, nil, loopbackArgs(filepath.Join(dir, "data"), "--auth", "token", "--bootstrap-token-file", tokenFile,
		"--tls-cert", serverCert, "--tls-key", serverKey, "--tls-client-ca", ca.CertFile, "--http-addr", "127.0.0.1:0")...)
	raw, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	operator := strings.TrimSpace(string(raw))
	roots := tlstest.Pool(t, serverCert)
	admin := ca.IssueClient(t, "acme-admin")  // registered below, for account acme
	stranger := ca.IssueClient(t, "stranger") // from the CA, registered as nobody

	// gRPC, as the operator: an account, and a certificate credential.
	conn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: roots, Certificates: []tls.Certificate{stranger}, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	adminc := gatehousev1.NewAdminServiceClient(conn)
	opCtx := metadata.AppendToOutgoingContext(testContext(t), "authorization", "Bearer "+operator)
	for _, id := range []string{"acme", "other"} {
		if _, err := adminc.CreateAccount(opCtx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: id, DisplayName: id}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := adminc.CreateCallerToken(opCtx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
		Name: "acme admin cert", Role: gatehousev1.CallerRole_CALLER_ROLE_ADMIN, AccountId: "acme", CertificateIdentity: "acme-admin",
		CertificateIdentityKind: gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN}}); err != nil {
		t.Fatal(err)
	}

	base := "https://" + d.httpAddr()
	client := func(cert tls.Certificate) *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}
	}
	type answer struct {
		code int
		st   struct {
			Code    codes.Code `json:"code"`
			Message string     `json:"message"`
		}
		body []byte
	}
	call := func(c *http.Client, method, path, body string, header ...string) answer {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer func() { _ = resp.Body.Close() }()
		a := answer{code: resp.StatusCode}
		a.body, _ = io.ReadAll(resp.Body)
		if a.code != http.StatusOK {
			if err := json.Unmarshal(a.body, &a.st); err != nil {
				t.Fatalf("%s %s: HTTP %d body %q is no Status: %v", method, path, a.code, a.body, err)
			}
		}
		return a
	}
	want := func(what string, a answer, code int, grpcCode codes.Code) {
		t.Helper()
		if a.code != code || (code != http.StatusOK && a.st.Code != grpcCode) {
			t.Errorf("%s: HTTP %d %s, want %d (%v)", what, a.code, a.body, code, grpcCode)
		}
	}

	// The registered certificate is the acme admin: its own account, not
	// another, not a store-wide call.
	adminHC, strangerHC := client(admin), client(stranger)
	want("cert admin reads its account", call(adminHC, "GET", "/v1/accounts/acme/liveGuideSettings", ""), 200, codes.OK)
	want("cert admin writes its account", call(adminHC, "PATCH", "/v1/accounts/acme/liveGuideSettings", `{"chat":true}`), 200, codes.OK)
	want("cert admin reads another account", call(adminHC, "GET", "/v1/accounts/other/liveGuideSettings", ""), http.StatusForbidden, codes.PermissionDenied)
	want("cert admin creates an account", call(adminHC, "POST", "/v1/accounts", `{"id":"third","display_name":"x"}`), http.StatusForbidden, codes.PermissionDenied)

	// An unregistered certificate is nobody, whatever headers it adds —
	// the gateway's forwarded-certificate key among them, in every
	// spelling an HTTP header could reach metadata by.
	forged := base64.StdEncoding.EncodeToString(admin.Certificate[0])
	for _, h := range [][]string{
		nil,
		{"Grpc-Metadata-" + server.GatewayClientCertKey, forged},
		{server.GatewayClientCertKey, forged},
		{"Grpc-Metadata-Gatehouse-Gateway-Client-Cert", forged},
		{"Authorization", "Bearer gh_k-forged_secret"},
	} {
		want("stranger with "+strings.Join(h, ": "), call(strangerHC, "GET", "/v1/accounts/acme/liveGuideSettings", "", h...),
			http.StatusUnauthorized, codes.Unauthenticated)
	}
	// A bearer token wins over the certificate, as over gRPC.
	want("stranger with the operator's bearer", call(strangerHC, "POST", "/v1/accounts", `{"id":"third","display_name":"Third"}`,
		"Authorization", "Bearer "+operator), 200, codes.OK)

	// Over gRPC, the forwarded-certificate key is not believed either.
	forgedCtx := metadata.AppendToOutgoingContext(testContext(t), server.GatewayClientCertKey, string(admin.Certificate[0]))
	_, err = adminc.GetLiveGuideSettings(forgedCtx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "acme"})
	wantCode(t, "gRPC caller sending the gateway's certificate key", err, codes.Unauthenticated)

	// The audit log names the HTTP caller of the write.
	events, err := adminc.ListAuditEvents(opCtx, &gatehousev1.ListAuditEventsRequest{AccountId: "acme", ResourceType: "live_guide_settings"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events.GetEvents() {
		if strings.HasPrefix(e.GetCaller(), "acme admin cert") && strings.HasSuffix(e.GetRpc(), "UpdateLiveGuideSettings") {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit event of the HTTP write by the certificate caller: %v", events.GetEvents())
	}
}
