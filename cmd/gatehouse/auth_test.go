package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig"
	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig/tlstest"
)

func TestTokens_CreateListRevoke(t *testing.T) {
	t.Parallel()
	ts := mustStart(t, withAuth)
	ts.mustAccount("acme")
	ts.mustAccount("other")

	out := ts.must("tokens", "create", "--name", "acme admin", "--role", "admin", "--account", "acme")
	d := detail(out)
	bearer := d["bearer"]
	if !strings.HasPrefix(bearer, "gh_") || d["role"] != "ADMIN" || d["account_id"] != "acme" {
		t.Fatalf("create: %v", d)
	}
	id := d["id"]
	quiet := strings.TrimSpace(ts.must("tokens", "create", "--name", "decider", "--role", "decider", "-q"))
	if !strings.HasPrefix(quiet, "gh_") || strings.Contains(quiet, "\n") {
		t.Fatalf("-q: %q", quiet)
	}
	list := ts.must("tokens", "list")
	wantIn(t, list, "acme admin", "ADMIN", "DECIDER", "OPERATOR", "test operator")
	if strings.Contains(list, bearer) {
		t.Fatal("list shows a secret")
	}

	// The admin token works for its account only.
	admin := map[string]string{"GATEHOUSE_ADDR": ts.addr, "GATEHOUSE_TOKEN": bearer}
	if r := runCLI(t, admin, "", "accounts", "get", "acme"); r.code != 0 {
		t.Fatalf("admin get own account: %+v", r)
	}
	r := runCLI(t, admin, "", "accounts", "get", "other")
	if r.code != exitError || !strings.Contains(r.err, "Error: PERMISSION_DENIED:") {
		t.Fatalf("admin get other account: %+v", r)
	}
	r = runCLI(t, admin, "", "tokens", "list")
	if r.code != exitError || !strings.Contains(r.err, "PERMISSION_DENIED") {
		t.Fatalf("admin lists tokens: %+v", r)
	}

	revoked := detail(ts.must("tokens", "revoke", id))
	if revoked["revoked"] != "true" {
		t.Fatalf("revoke: %v", revoked)
	}
	r = runCLI(t, admin, "", "accounts", "get", "acme")
	if r.code != exitError || !strings.Contains(r.err, "Error: UNAUTHENTICATED:") || !strings.Contains(r.err, "hint: the server refused the token from GATEHOUSE_TOKEN") {
		t.Fatalf("revoked token: %+v", r)
	}
}

func TestToken_FlagFileAndEnv(t *testing.T) {
	t.Parallel()
	ts := mustStart(t, withAuth)
	noToken := map[string]string{"GATEHOUSE_ADDR": ts.addr}
	r := runCLI(t, noToken, "", "accounts", "list")
	if r.code != exitError || !strings.Contains(r.err, "UNAUTHENTICATED") {
		t.Fatalf("no token: %+v", r)
	}
	if r := runCLI(t, noToken, "", "accounts", "list", "--token", ts.bearer); r.code != 0 {
		t.Fatalf("--token: %+v", r)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(ts.bearer+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, noToken, "", "accounts", "list", "--token-file", file); r.code != 0 {
		t.Fatalf("--token-file: %+v", r)
	}
	if r := runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts.addr, "GATEHOUSE_TOKEN_FILE": file}, "", "accounts", "list"); r.code != 0 {
		t.Fatalf("GATEHOUSE_TOKEN_FILE: %+v", r)
	}
	if r := runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts.addr, "GATEHOUSE_TOKEN": ts.bearer}, "", "accounts", "list"); r.code != 0 {
		t.Fatalf("GATEHOUSE_TOKEN: %+v", r)
	}
	// The flag wins over the environment.
	r = runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts.addr, "GATEHOUSE_TOKEN": ts.bearer}, "", "accounts", "list", "--token", "gh_k-nobody_secret")
	if r.code != exitError || !strings.Contains(r.err, "UNAUTHENTICATED") {
		t.Fatalf("--token over GATEHOUSE_TOKEN: %+v", r)
	}
	r = runCLI(t, noToken, "", "accounts", "list", "--token", "x", "--token-file", file)
	if r.code != exitUsage {
		t.Fatalf("--token and --token-file: %+v", r)
	}
}

func TestAddr_FlagAndEnv(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	// Nothing listens on the env address; the flag wins over it.
	dead := "127.0.0.1:1"
	if r := runCLI(t, map[string]string{"GATEHOUSE_ADDR": dead}, "", "accounts", "list", "--addr", ts.addr); r.code != 0 {
		t.Fatalf("--addr over GATEHOUSE_ADDR: %+v", r)
	}
	r := runCLI(t, map[string]string{"GATEHOUSE_ADDR": dead}, "", "accounts", "list", "--timeout", "2s")
	if r.code != exitError || !strings.Contains(r.err, "Error: UNAVAILABLE:") || !strings.Contains(r.err, "hint: is gatehoused serving on "+dead) {
		t.Fatalf("GATEHOUSE_ADDR of a dead server: %+v", r)
	}
	// GATEHOUSE_ACCOUNT stands in for --account.
	env := map[string]string{"GATEHOUSE_ADDR": ts.addr, "GATEHOUSE_ACCOUNT": "acme"}
	if r := runCLI(t, env, "", "settings", "get"); r.code != 0 || !strings.Contains(r.out, "account_id               acme") {
		t.Fatalf("GATEHOUSE_ACCOUNT: %+v", r)
	}
}

func TestTLS_CAAndClientCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := tlstest.WriteSelfSigned(t, dir, "gatehouse-test")
	cfg, err := tlsconfig.Server(tlsconfig.Files{Cert: cert, Key: key, ClientCA: cert})
	if err != nil {
		t.Fatal(err)
	}
	ts := mustStart(t, withTLS(cfg))
	env := map[string]string{"GATEHOUSE_ADDR": ts.addr}
	if r := runCLI(t, env, "", "accounts", "list", "--tls-ca", cert, "--tls-cert", cert, "--tls-key", key); r.code != 0 {
		t.Fatalf("mutual TLS: %+v", r)
	}
	if r := runCLI(t, env, "", "accounts", "list", "--tls-ca", cert, "--timeout", "2s"); r.code != exitError {
		t.Fatalf("no client certificate for a mutual-TLS server: %+v", r)
	}
	if r := runCLI(t, env, "", "accounts", "list", "--timeout", "2s"); r.code != exitError || !strings.Contains(r.err, "UNAVAILABLE") {
		t.Fatalf("plaintext to a TLS server: %+v", r)
	}
	if r := runCLI(t, env, "", "accounts", "list", "--tls-ca", cert, "--tls-cert", cert); r.code != exitUsage {
		t.Fatalf("--tls-cert without --tls-key: %+v", r)
	}

	serverOnly, err := tlsconfig.Server(tlsconfig.Files{Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := mustStart(t, withTLS(serverOnly))
	if r := runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts2.addr}, "", "accounts", "list", "--tls-ca", cert, "--tls-server-name", "127.0.0.1"); r.code != 0 {
		t.Fatalf("server TLS: %+v", r)
	}
}

func TestAudit_List(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	ts.mustAccount("other")
	ts.must("accounts", "update", "acme", "--display-name", "Acme Corp")
	ts.must("portals", "create", "helpdesk", "-a", "acme", "--name", "Help desk")
	ts.must("portals", "update", "helpdesk", "-a", "acme", "--function", "send_files=true")

	out := ts.must("audit", "list", "-a", "acme")
	wantIn(t, out, "REVISION", "CALLER", "CreateAccount", "account/acme", "create", "UpdateAccount", "update display_name",
		"portal/helpdesk-default", "UpdatePortal", "update functions")
	if strings.Contains(out, "account/other") {
		t.Fatalf("another account's events:\n%s", out)
	}
	portals := ts.must("audit", "list", "-a", "acme", "--resource-type", "portal", "--resource-id", "helpdesk")
	if rows := strings.Count(strings.TrimSpace(portals), "\n"); rows != 2 {
		t.Fatalf("portal helpdesk: %d events\n%s", rows, portals)
	}
	if rows := strings.Count(strings.TrimSpace(ts.must("audit", "list", "--since", "1h")), "\n"); rows < 6 {
		t.Fatalf("--since 1h lists %d events", rows)
	}
	if got := strings.TrimSpace(ts.must("audit", "list", "--until", "2000-01-01")); strings.Contains(got, "\n") {
		t.Fatalf("--until 2000-01-01 lists events:\n%s", got)
	}
	j := ts.mustJSON("audit", "list", "-a", "acme", "--resource-type", "account")
	events := j["events"].([]any)
	newest := events[0].(map[string]any) // newest first
	if !strings.Contains(newest["after_json"].(string), "Acme Corp") || newest["rpc"] != "/gatehouse.v1.AdminService/UpdateAccount" {
		t.Fatalf("json events: %v", newest)
	}
	wantIn(t, ts.mustFail(exitUsage, "audit", "list", "--since", "yesterday").err, `--since: "yesterday" is not an RFC 3339 time`)
}

// TestTokens_CertificateCredential: an operator registers a client
// certificate identity; the CLI then authenticates with that certificate
// alone, in the credential's role and account.
func TestTokens_CertificateCredential(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCert, serverKey := tlstest.WriteSelfSigned(t, dir, "gatehouse-test")
	ca := tlstest.NewCA(t, dir, "callers")
	cfg, err := tlsconfig.Server(tlsconfig.Files{Cert: serverCert, Key: serverKey, ClientCA: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	ts := mustStart(t, withAuth, withTLS(cfg))
	opCert, opKey := ca.WriteClient(t, dir, "ops", "ops-console")
	toolCert, toolKey := ca.WriteClient(t, dir, "tool", "acme-admin-tool", "spiffe://example.org/acme/admin-tool")
	tlsArgs := func(cert, key string) []string {
		return []string{"--tls-ca", serverCert, "--tls-cert", cert, "--tls-key", key}
	}
	op := map[string]string{"GATEHOUSE_ADDR": ts.addr, "GATEHOUSE_TOKEN": ts.bearer}
	mustCLI := func(env map[string]string, args ...string) string {
		t.Helper()
		r := runCLI(t, env, "", args...)
		if r.code != 0 {
			t.Fatalf("gatehouse %s: %+v", strings.Join(args, " "), r)
		}
		return r.out
	}
	for _, acct := range []string{"acme", "other"} {
		mustCLI(op, append(tlsArgs(opCert, opKey), "accounts", "create", acct, "--display-name", acct)...)
	}
	created := detail(mustCLI(op, append(tlsArgs(opCert, opKey), "tokens", "create", "--name", "acme admin tool", "--role", "admin",
		"--account", "acme", "--certificate-identity", "spiffe://example.org/acme/admin-tool")...))
	if created["certificate_identity"] != "spiffe://example.org/acme/admin-tool" || created["bearer"] != "" {
		t.Fatalf("create a certificate credential: %v", created)
	}
	wantIn(t, mustCLI(op, append(tlsArgs(opCert, opKey), "tokens", "list")...), "CERTIFICATE_IDENTITY", "spiffe://example.org/acme/admin-tool")

	// No token: the certificate is the caller.
	certOnly := map[string]string{"GATEHOUSE_ADDR": ts.addr}
	mustCLI(certOnly, append(tlsArgs(toolCert, toolKey), "accounts", "get", "acme")...)
	r := runCLI(t, certOnly, "", append(tlsArgs(toolCert, toolKey), "accounts", "get", "other")...)
	if r.code != exitError || !strings.Contains(r.err, "PERMISSION_DENIED") {
		t.Fatalf("certificate credential, other account: %+v", r)
	}
	r = runCLI(t, certOnly, "", append(tlsArgs(opCert, opKey), "accounts", "get", "acme")...)
	if r.code != exitError || !strings.Contains(r.err, "UNAUTHENTICATED") || !strings.Contains(r.err, "not registered") {
		t.Fatalf("unregistered certificate: %+v", r)
	}
	mustCLI(op, append(tlsArgs(opCert, opKey), "tokens", "revoke", created["id"])...)
	r = runCLI(t, certOnly, "", append(tlsArgs(toolCert, toolKey), "accounts", "get", "acme")...)
	if r.code != exitError || !strings.Contains(r.err, "UNAUTHENTICATED") {
		t.Fatalf("revoked certificate credential: %+v", r)
	}

	// A kind prefix names the certificate field: the tool's URI SAN
	// registered as a common name does not match its certificate.
	asCN := detail(mustCLI(op, append(tlsArgs(opCert, opKey), "tokens", "create", "--name", "wrong kind", "--role", "admin",
		"--account", "acme", "--certificate-identity", "cn:spiffe://example.org/acme/admin-tool")...))
	if asCN["certificate_identity"] != "spiffe://example.org/acme/admin-tool" || !strings.Contains(asCN["certificate_identity_kind"], "SUBJECT_CN") {
		t.Fatalf("cn: prefix: %v", asCN)
	}
	r = runCLI(t, certOnly, "", append(tlsArgs(toolCert, toolKey), "accounts", "get", "acme")...)
	if r.code != exitError || !strings.Contains(r.err, "UNAUTHENTICATED") {
		t.Fatalf("URI SAN against a common-name credential: %+v", r)
	}
	mustCLI(op, append(tlsArgs(opCert, opKey), "tokens", "create", "--name", "by cn", "--role", "admin",
		"--account", "acme", "--certificate-identity", "CN:acme-admin-tool")...)
	mustCLI(certOnly, append(tlsArgs(toolCert, toolKey), "accounts", "get", "acme")...)
	wantIn(t, mustCLI(op, append(tlsArgs(opCert, opKey), "tokens", "list")...), "CERTIFICATE_IDENTITY_KIND", "SUBJECT_CN")
	r = runCLI(t, op, "", append(tlsArgs(opCert, opKey), "tokens", "create", "--name", "bad", "--role", "admin",
		"--certificate-identity", "uri:not-a-uri")...)
	if r.code == 0 || !strings.Contains(r.err, "INVALID_ARGUMENT") {
		t.Fatalf("uri: prefix with no URI: %+v", r)
	}
}
