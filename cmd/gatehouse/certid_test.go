package main

import (
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
)

func TestParseCertIdentity(t *testing.T) {
	const (
		none = gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_UNSPECIFIED
		cn   = gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN
		uri  = gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_URI_SAN
		dns  = gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN
	)
	for _, c := range []struct {
		in    string
		kind  gatehousev1.CertificateIdentityKind
		value string
	}{
		{"cn:ops-console", cn, "ops-console"},
		{"CN:ops-console", cn, "ops-console"},
		{"uri:spiffe://example.org/s", uri, "spiffe://example.org/s"},
		{"dns:console.example.org", dns, "console.example.org"},
		{"uri:dns:example.org", uri, "dns:example.org"},
		{"cn:uri:x", cn, "uri:x"},
		{"spiffe://example.org/s", none, "spiffe://example.org/s"},
		{"ops-console", none, "ops-console"},
		{"", none, ""},
	} {
		kind, value, err := parseCertIdentity(c.in)
		if err != nil || kind != c.kind || value != c.value {
			t.Errorf("parseCertIdentity(%q) = %v, %q, %v; want %v, %q", c.in, kind, value, err, c.kind, c.value)
		}
	}
	if _, _, err := parseCertIdentity("dns:"); err == nil {
		t.Error(`parseCertIdentity("dns:") accepted an empty identity`)
	}
}
