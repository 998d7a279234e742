// Package tlsconfig builds the daemon's TLS configuration from PEM files:
// a server certificate that is reloaded when its files change (so a
// renewed certificate is picked up without a restart) and, optionally, a
// CA that client certificates must chain to (mutual TLS).
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Files names the PEM files of a TLS setup.
type Files struct {
	// Cert and Key are the server certificate chain and its private key.
	Cert, Key string
	// ClientCA, when set, makes client certificates signed by it mandatory.
	ClientCA string
}

// reloader serves the certificate of Files, reloading it when either
// file's modification time changes (checked at most once a second).
type reloader struct {
	files Files

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
	now     func() time.Time
}

func modTime(path string) (time.Time, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

func (r *reloader) load() error {
	c, k := r.files.Cert, r.files.Key
	mc, err := modTime(c)
	if err != nil {
		return err
	}
	mk, err := modTime(k)
	if err != nil {
		return err
	}
	if r.cert != nil && mc.Equal(r.stamp[0]) && mk.Equal(r.stamp[1]) {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c, k)
	if err != nil {
		return fmt.Errorf("load certificate %s / %s: %w", c, k, err)
	}
	r.cert, r.stamp = &cert, [2]time.Time{mc, mk}
	return nil
}

// get returns the current certificate. A failed reload (e.g. a half
// written file during renewal) keeps serving the previous certificate.
func (r *reloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= time.Second {
		r.checked = now
		if err := r.load(); err != nil && r.cert == nil {
			return nil, err
		}
	}
	return r.cert, nil
}

// Server returns a server TLS configuration (TLS 1.2 or later) for f. It
// fails when the certificate or CA cannot be loaded now.
func Server(f Files) (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("tls: both a certificate and a key file are needed")
	}
	r := &reloader{files: f, now: time.Now}
	if err := r.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}
	if f.ClientCA != "" {
		pem, err := os.ReadFile(f.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificate in it", f.ClientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
