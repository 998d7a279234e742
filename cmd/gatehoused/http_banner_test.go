package main

import (
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// The HTTP lines of the --demo banner name the API and OpenAPI URLs with
// the scheme, dialable address and credentials of the configuration.
func TestHTTPBanner_FitsTheConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       func(*config.Config)
		addr      string
		want      []string
		wantNever []string
	}{
		{"plaintext", func(*config.Config) {}, "127.0.0.1:8471",
			[]string{"Web console:   http://127.0.0.1:8471/ ", "HTTP/JSON API: http://127.0.0.1:8471/v1/", "OpenAPI:       http://127.0.0.1:8471/openapi.json",
				"curl -s http://127.0.0.1:8471/v1/accounts/demo/liveGuideSettings"},
			[]string{"https", "Authorization"}},
		{"TLS, mutual TLS, token file, any address", func(c *config.Config) {
			c.TLSCert, c.TLSKey, c.TLSClientCA, c.Auth, c.BootstrapTokenFile = "srv.crt", "srv.key", "ca.crt", "token", "op token"
		}, "0.0.0.0:8471",
			[]string{"Web console:   https://127.0.0.1:8471/ ", "https://127.0.0.1:8471/openapi.json",
				`curl -s --cacert srv.crt --cert CLIENT.crt --key CLIENT.key -H "Authorization: Bearer $(cat 'op token')" https://127.0.0.1:8471/v1/`},
			[]string{"0.0.0.0"}},
		{"token without a file", func(c *config.Config) { c.Auth = "token" }, "[::]:8471",
			[]string{`-H "Authorization: Bearer $TOKEN" http://[::1]:8471/v1/`}, nil},
	} {
		cfg := config.Default()
		tc.cfg(&cfg)
		got := httpBanner(cfg, tc.addr)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: banner lacks %q:\n%s", tc.name, w, got)
			}
		}
		for _, n := range tc.wantNever {
			if strings.Contains(got, n) {
				t.Errorf("%s: banner holds %q:\n%s", tc.name, n, got)
			}
		}
	}
}
