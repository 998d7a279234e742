// Package tlstest writes throw-away certificates for tests.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// template returns a certificate template valid for an hour either side of
// now, with the given common name.
func template(cn string) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
}

// issue signs tmpl with a new key: by parent's key, or self-signed when
// parent is nil. It returns the certificate's DER bytes and its key.
func issue(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// writePEM writes a certificate (and its key when key is not nil) as PEM
// files.
func writePEM(t *testing.T, certFile string, der []byte, keyFile string, key *ecdsa.PrivateKey) {
	t.Helper()
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if key == nil {
		return
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// WriteSelfSigned writes a self-signed CA certificate for 127.0.0.1 with
// the given common name, usable as server and client certificate and as
// its own CA, into dir as cert.pem and key.pem, and returns the paths.
func WriteSelfSigned(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	tmpl := template(cn)
	tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	der, key := issue(t, tmpl, nil, nil)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, der, keyFile, key)
	return certFile, keyFile
}

// CA is a throw-away certificate authority that issues client
// certificates.
type CA struct {
	// CertFile is the PEM file of the CA certificate (for --tls-client-ca).
	CertFile string
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
}

// NewCA writes a new CA certificate with the given common name into dir
// (as ca.pem).
func NewCA(t *testing.T, dir, cn string) *CA {
	t.Helper()
	tmpl := template(cn)
	tmpl.KeyUsage, tmpl.IsCA, tmpl.BasicConstraintsValid = x509.KeyUsageCertSign, true, true
	der, key := issue(t, tmpl, nil, nil)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{CertFile: filepath.Join(dir, "ca.pem"), cert: cert, key: key}
	writePEM(t, ca.CertFile, der, "", nil)
	return ca
}

// IssueClient returns a client certificate and key signed by ca, with the
// given subject common name and URI subject alternative names.
func (ca *CA) IssueClient(t *testing.T, cn string, uris ...string) tls.Certificate {
	t.Helper()
	return ca.IssueClientSANs(t, cn, uris, nil)
}

// IssueClientSANs returns a client certificate and key signed by ca, with
// the given subject common name (none when empty), URI subject alternative
// names and DNS subject alternative names.
func (ca *CA) IssueClientSANs(t *testing.T, cn string, uris, dnsNames []string) tls.Certificate {
	t.Helper()
	tmpl := template(cn)
	tmpl.DNSNames = dnsNames
	tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, key := issue(t, tmpl, ca.cert, ca.key)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// WriteClient issues a client certificate like IssueClient and writes it
// and its key into dir as <name>.pem and <name>-key.pem.
func (ca *CA) WriteClient(t *testing.T, dir, name, cn string, uris ...string) (certFile, keyFile string) {
	t.Helper()
	c := ca.IssueClient(t, cn, uris...)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, c.Certificate[0], keyFile, c.PrivateKey.(*ecdsa.PrivateKey))
	return certFile, keyFile
}

// WriteServer issues a server certificate for 127.0.0.1 and localhost
// signed by ca and writes it and its key into dir as <name>.pem and
// <name>-key.pem.
func (ca *CA) WriteServer(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	tmpl := template("localhost")
	tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	tmpl.DNSNames = []string{"localhost"}
	tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, key := issue(t, tmpl, ca.cert, ca.key)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, der, keyFile, key)
	return certFile, keyFile
}

// Pool returns a certificate pool holding the PEM certificates of
// certFile (a server's, to trust as a root).
func Pool(t *testing.T, certFile string) *x509.CertPool {
	t.Helper()
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no PEM certificate", certFile)
	}
	return pool
}
