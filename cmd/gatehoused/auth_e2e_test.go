//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// TestE2E_TokenAuth: with --auth token the daemon may serve any address,
// writes a bootstrap operator token once, and refuses calls without a
// valid token (health excepted).
func TestE2E_TokenAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "operator.token")
	d := start(t, nil, "--listen", "0.0.0.0:0", "--data-dir", filepath.Join(dir, "data"), "--auth", "token", "--bootstrap-token-file", tokenFile)
	raw, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(tokenFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode())
	}
	bearer := strings.TrimSpace(string(raw))
	addr := strings.Replace(d.addr, "0.0.0.0", "127.0.0.1", 1)
	addr = strings.Replace(addr, "[::]", "127.0.0.1", 1)
	c := dial(t, addr)
	ctx := testContext(t)
	if _, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health without a token: %v", err)
	}
	_, err = c.admin.ListAccounts(ctx, &gatehousev1.ListAccountsRequest{})
	wantCode(t, "ListAccounts without a token", err, codes.Unauthenticated)
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+bearer)
	if _, err := c.admin.CreateAccount(authed, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}); err != nil {
		t.Fatalf("operator CreateAccount: %v", err)
	}
	tok, err := c.admin.CreateCallerToken(authed, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{Name: "acme admin", Role: gatehousev1.CallerRole_CALLER_ROLE_ADMIN, AccountId: "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	scoped := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok.GetBearer())
	if _, err := c.admin.GetLiveGuideSettings(scoped, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "acme"}); err != nil {
		t.Fatalf("scoped admin in its account: %v", err)
	}
	_, err = c.admin.CreateAccount(scoped, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "other", DisplayName: "Other"}})
	wantCode(t, "scoped admin CreateAccount", err, codes.PermissionDenied)

	// A restart neither rewrites the file nor creates a second token.
	d.stop()
	d = start(t, nil, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--auth", "token", "--bootstrap-token-file", tokenFile)
	again, _ := os.ReadFile(tokenFile)
	if string(again) != string(raw) {
		t.Fatal("bootstrap token file rewritten on restart")
	}
	c = dial(t, d.addr)
	list, err := c.admin.ListCallerTokens(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+bearer), &gatehousev1.ListCallerTokensRequest{})
	if err != nil || len(list.GetTokens()) != 2 {
		t.Fatalf("tokens after restart: %v %v", list, err)
	}
}
