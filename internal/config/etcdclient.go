package config

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
)

// ClientOptions returns the etcd driver's options for the flags: the
// endpoints and prefix, TLS from --etcd-ca, --etcd-cert and --etcd-key
// (system roots for an https:// endpoint without a CA), and the password
// read from --etcd-password-file. The daemon and the offline tools
// connect the same way.
func (e Etcd) ClientOptions() (etcd.Options, error) {
	opts := etcd.Options{Endpoints: e.EndpointList(), Prefix: e.Prefix, DialTimeout: e.DialTimeout, Username: e.Username}
	if e.TLS() {
		if e.CA != "" || e.Cert != "" {
			tc, err := transport.TLSInfo{TrustedCAFile: e.CA, CertFile: e.Cert, KeyFile: e.Key}.ClientConfig()
			if err != nil {
				return opts, fmt.Errorf("etcd TLS: %w", err)
			}
			opts.TLS = tc
		} else {
			opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	if e.PasswordFile != "" {
		pw, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return opts, fmt.Errorf("etcd-password-file: %w", err)
		}
		opts.Password = strings.TrimRight(string(pw), "\r\n")
	}
	return opts, nil
}
