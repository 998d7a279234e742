package config_test

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

func TestValidate_Store(t *testing.T) {
	etcd := func(eps ...string) func(*config.Config) {
		return func(c *config.Config) { c.Store = "etcd"; c.Etcd.Endpoints = strings.Join(eps, ",") }
	}
	and := func(fs ...func(*config.Config)) func(*config.Config) {
		return func(c *config.Config) {
			for _, f := range fs {
				f(c)
			}
		}
	}
	tests := []struct {
		name    string
		edit    func(*config.Config)
		wantErr []string // nil: valid
	}{
		{"bolt default", func(*config.Config) {}, nil},
		{"unknown store", func(c *config.Config) { c.Store = "redis" }, []string{`store "redis"`, "bolt or etcd"}},
		{"empty store", func(c *config.Config) { c.Store = "" }, []string{`store ""`}},
		{"etcd flags with bolt", func(c *config.Config) { c.Etcd.Endpoints = "127.0.0.1:2379" }, []string{"need --store etcd"}},
		{"etcd password with bolt", func(c *config.Config) { c.Etcd.Username = "u"; c.Etcd.PasswordFile = "/pw" }, []string{"need --store etcd"}},
		{"etcd loopback", etcd("127.0.0.1:2379"), nil},
		{"etcd loopback v6 and localhost", etcd("[::1]:2379", "localhost:2379"), nil},
		{"etcd loopback URL", etcd("http://127.0.0.1:2379"), nil},
		{"etcd without endpoints", etcd(), []string{"--etcd-endpoints"}},
		{"etcd endpoint without port", etcd("127.0.0.1"), []string{`etcd-endpoints "127.0.0.1"`}},
		{"etcd endpoint bad scheme", etcd("unix://127.0.0.1:2379"), []string{`etcd-endpoints "unix://127.0.0.1:2379"`}},
		{"etcd endpoint with path", etcd("http://127.0.0.1:2379/v3"), []string{`etcd-endpoints "http://127.0.0.1:2379/v3"`}},
		{"etcd remote plaintext", etcd("10.0.0.5:2379"), []string{`"10.0.0.5:2379" is not a loopback address`, "--etcd-ca", "--insecure"}},
		{"etcd one remote among loopback", etcd("127.0.0.1:2379", "etcd-2.example.com:2379"), []string{`"etcd-2.example.com:2379"`}},
		{"etcd remote http URL", etcd("http://10.0.0.5:2379"), []string{"--insecure"}},
		{"etcd remote insecure", and(etcd("10.0.0.5:2379"), func(c *config.Config) { c.Insecure = true }), nil},
		{"etcd remote with CA", and(etcd("10.0.0.5:2379"), func(c *config.Config) { c.Etcd.CA = "/ca.pem" }), nil},
		{"etcd remote https URL", etcd("https://10.0.0.5:2379"), nil},
		{"etcd remote with client cert", and(etcd("10.0.0.5:2379"), func(c *config.Config) { c.Etcd.Cert, c.Etcd.Key = "/c.pem", "/k.pem" }), nil},
		// etcd's client speaks plaintext to http:// endpoints whatever its
		// TLS configuration: with TLS on they are refused, loopback too.
		{"etcd http URL with CA", and(etcd("http://10.0.0.5:2379"), func(c *config.Config) { c.Etcd.CA = "/ca.pem" }), []string{`"http://10.0.0.5:2379" is http:// but TLS is on`, "https://10.0.0.5:2379"}},
		{"etcd loopback http URL with client cert", and(etcd("http://127.0.0.1:2379"), func(c *config.Config) { c.Etcd.Cert, c.Etcd.Key = "/c.pem", "/k.pem" }), []string{"is http:// but TLS is on"}},
		{"etcd upper-case HTTP URL with CA", and(etcd("HTTP://10.0.0.5:2379"), func(c *config.Config) { c.Etcd.CA = "/ca.pem" }), []string{"is http:// but TLS is on"}},
		{"etcd http before https", etcd("http://10.0.0.6:2379", "https://10.0.0.5:2379"), []string{`"http://10.0.0.6:2379" is http:// but TLS is on`}},
		{"etcd https before http", etcd("https://10.0.0.5:2379", "http://127.0.0.1:2379"), []string{`"http://127.0.0.1:2379" is http:// but TLS is on`}},
		{"etcd upper-case HTTPS URL", etcd("HTTPS://10.0.0.5:2379"), nil},
		{"etcd cert without key", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.Etcd.Cert = "/c.pem" }), []string{"etcd-cert and etcd-key go together"}},
		{"etcd key without cert", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.Etcd.Key = "/k.pem" }), []string{"etcd-cert and etcd-key go together"}},
		{"etcd username without password", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.Etcd.Username = "gh" }), []string{"etcd-username and etcd-password-file go together"}},
		{"etcd password without username", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.Etcd.PasswordFile = "/pw" }), []string{"go together"}},
		{"etcd empty prefix", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.Etcd.Prefix = "" }), []string{"etcd-prefix"}},
		{"etcd zero dial timeout", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.Etcd.DialTimeout = 0 }), []string{"etcd-dial-timeout"}},
		{"etcd negative dial timeout", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.Etcd.DialTimeout = -time.Second }), []string{"etcd-dial-timeout"}},
		{"etcd zero leader TTL", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.Etcd.LeaderTTL = 0 }), []string{"etcd-leader-ttl"}},
		{"etcd leader TTL under a second", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.Etcd.LeaderTTL = 500 * time.Millisecond }), []string{"etcd-leader-ttl", "at least 1s"}},
		{"etcd leader TTL not whole seconds", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.Etcd.LeaderTTL = 1500 * time.Millisecond }), []string{"etcd-leader-ttl", "whole seconds"}},
		{"etcd leader TTL 1s", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.Etcd.LeaderTTL = time.Second }), nil},
		{"negative max staleness", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.MaxStaleness = -time.Second }), []string{"max-staleness", "0 (no bound)"}},
		{"max staleness under a second", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.MaxStaleness = 500 * time.Millisecond }), []string{"max-staleness 500ms", "at least 1s"}},
		{"max staleness 1s", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.MaxStaleness = time.Second }), nil},
		{"negative max staleness on bolt", func(c *config.Config) { c.MaxStaleness = -time.Second }, []string{"max-staleness"}},
		{"no staleness bound", and(etcd("127.0.0.1:2379"), func(c *config.Config) { c.MaxStaleness = 0 }), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want an error containing %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParse_StoreFlagsAndEnv(t *testing.T) {
	c := config.Default()
	env := map[string]string{"GATEHOUSE_ETCD_PREFIX": "/env/", "GATEHOUSE_ETCD_DIAL_TIMEOUT": "3s", "GATEHOUSE_ETCD_LEADER_TTL": "4s", "GATEHOUSE_MAX_STALENESS": "7s"}
	_, err := c.Parse([]string{"--store", "etcd", "--etcd-endpoints", " 127.0.0.1:2379, ,127.0.0.1:22379 ", "--etcd-username", "gh", "--etcd-password-file", "/pw"},
		io.Discard, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if c.Store != "etcd" || !slices.Equal(c.Etcd.EndpointList(), []string{"127.0.0.1:2379", "127.0.0.1:22379"}) ||
		c.Etcd.Prefix != "/env/" || c.Etcd.DialTimeout != 3*time.Second || c.Etcd.Username != "gh" || c.Etcd.PasswordFile != "/pw" || c.Etcd.LeaderTTL != 4*time.Second {
		t.Errorf("parsed %+v, store %q", c.Etcd, c.Store)
	}
	if c.MaxStaleness != 7*time.Second {
		t.Errorf("GATEHOUSE_MAX_STALENESS=7s: MaxStaleness %v", c.MaxStaleness)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	if config.Default().MaxStaleness != 30*time.Second {
		t.Errorf("default MaxStaleness %v; want 30s", config.Default().MaxStaleness)
	}
	d := config.Default()
	if _, err := d.Parse(nil, io.Discard, func(k string) (string, bool) {
		if k == "GATEHOUSE_ETCD_ENDPOINTS" {
			return "127.0.0.1:1,127.0.0.1:2", true
		}
		return "", false
	}); err != nil || !slices.Equal(d.Etcd.EndpointList(), []string{"127.0.0.1:1", "127.0.0.1:2"}) {
		t.Errorf("GATEHOUSE_ETCD_ENDPOINTS: %q, %v", d.Etcd.Endpoints, err)
	}
}
