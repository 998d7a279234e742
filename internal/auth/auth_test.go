package auth

import "testing"

func TestInferCertKind(t *testing.T) {
	for _, c := range []struct {
		in   string
		want CertKind
	}{
		{"spiffe://example.org/session-server", CertKindURISAN},
		{"https://example.org/x", CertKindURISAN},
		{"urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", CertKindURISAN},
		{"a+b.c-d:x", CertKindURISAN},
		{"ops-console", CertKindSubjectCN},
		{"console.example.org", CertKindSubjectCN},
		{"Ops Console: EU", CertKindSubjectCN},
		{"1abc:x", CertKindSubjectCN},
		{":x", CertKindSubjectCN},
		{"abc:", CertKindSubjectCN},
		{"", CertKindSubjectCN},
	} {
		if got := InferCertKind(c.in); got != c.want {
			t.Errorf("InferCertKind(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestTokenCertID(t *testing.T) {
	legacy := Token{CertIdentity: "spiffe://x/y"}
	if got := legacy.CertID(); got != (CertID{CertKindURISAN, "spiffe://x/y"}) {
		t.Fatalf("legacy URI credential: %v", got)
	}
	dns := Token{CertIdentity: "Host.Example.ORG", CertKind: CertKindDNSSAN}
	if got := dns.CertID(); got != (CertID{CertKindDNSSAN, "host.example.org"}) {
		t.Fatalf("DNS credential: %v", got)
	}
	cn := Token{CertIdentity: "spiffe://x/y", CertKind: CertKindSubjectCN}
	if cn.CertID() == legacy.CertID() {
		t.Fatal("a common name and a URI SAN of one spelling are the same identity")
	}
	if (&Token{Hash: "h"}).IdentityKind() != CertKindUnspecified {
		t.Fatal("a bearer token has a certificate kind")
	}
}
