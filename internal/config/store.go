package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// MinMaxStaleness is the smallest --max-staleness accepted (but 0, no
// bound): about an etcd leader election with etcd's default timing, which
// a replica should ride out without refusing decisions.
const MinMaxStaleness = time.Second

// Store drivers (--store).
const (
	StoreBolt = "bolt"
	StoreEtcd = "etcd"
)

// Etcd configures the etcd store (--store etcd).
type Etcd struct {
	// Endpoints are the client endpoints of the etcd cluster (host:port,
	// or http:// and https:// URLs), comma-separated; see EndpointList.
	Endpoints string
	// Prefix is put before every key Gatehouse writes.
	Prefix string
	// CA is a PEM file of the CA the etcd server certificates chain to;
	// Cert and Key a client certificate. Any of them turns TLS on.
	CA, Cert, Key string
	// Username authenticates with etcd's auth, with the password in
	// PasswordFile.
	Username     string
	PasswordFile string
	// DialTimeout bounds the wait for etcd at start.
	DialTimeout time.Duration
	// LeaderTTL is the lease TTL of the leader election: a leader that
	// stops answering hands over at most this long after.
	LeaderTTL time.Duration
}

// TLS reports whether the connection to etcd uses TLS.
func (e Etcd) TLS() bool {
	if e.CA != "" || e.Cert != "" {
		return true
	}
	for _, ep := range e.EndpointList() {
		if endpointScheme(ep) == "https" {
			return true
		}
	}
	return false
}

// endpointScheme returns the URL scheme of an endpoint, lower-cased, or ""
// for host:port.
func endpointScheme(ep string) string {
	scheme, _, ok := strings.Cut(ep, "://")
	if !ok {
		return ""
	}
	return strings.ToLower(scheme)
}

// EndpointList returns Endpoints split at commas, blanks dropped.
func (e Etcd) EndpointList() []string {
	var out []string
	for ep := range strings.SplitSeq(e.Endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			out = append(out, ep)
		}
	}
	return out
}

func defaultEtcd() Etcd {
	return Etcd{Prefix: "/gatehouse/", DialTimeout: 10 * time.Second, LeaderTTL: 10 * time.Second}
}

func (c *Config) registerStoreFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Store, "store", c.Store, "store driver: bolt (the file in --data-dir) or etcd (--etcd-endpoints)")
	fs.StringVar(&c.Etcd.Endpoints, "etcd-endpoints", c.Etcd.Endpoints, "comma-separated etcd client endpoints (`host:port` or http(s) URLs), for --store etcd")
	fs.StringVar(&c.Etcd.Prefix, "etcd-prefix", c.Etcd.Prefix, "etcd key prefix every Gatehouse key is written under")
	fs.StringVar(&c.Etcd.CA, "etcd-ca", c.Etcd.CA, "PEM `file` of the CA the etcd server certificates chain to (turns TLS on)")
	fs.StringVar(&c.Etcd.Cert, "etcd-cert", c.Etcd.Cert, "PEM `file` of the client certificate presented to etcd (with --etcd-key)")
	fs.StringVar(&c.Etcd.Key, "etcd-key", c.Etcd.Key, "PEM `file` of the etcd client certificate's private key")
	fs.StringVar(&c.Etcd.Username, "etcd-username", c.Etcd.Username, "authenticate to etcd as this `user` (with --etcd-password-file)")
	fs.StringVar(&c.Etcd.PasswordFile, "etcd-password-file", c.Etcd.PasswordFile, "`file` holding the etcd password, for --etcd-username")
	fs.DurationVar(&c.Etcd.DialTimeout, "etcd-dial-timeout", c.Etcd.DialTimeout, "how long start-up waits for etcd to answer before it fails naming the endpoints")
	fs.DurationVar(&c.MaxStaleness, "max-staleness", c.MaxStaleness, "with --store etcd, refuse decisions (UNAVAILABLE) and report NOT_SERVING once etcd has not confirmed this replica's data for this long, e.g. while etcd is unreachable (0: no bound, answer from the last snapshot however old; else at least 1s)")
	fs.DurationVar(&c.Etcd.LeaderTTL, "etcd-leader-ttl", c.Etcd.LeaderTTL, "lease TTL of the leader election (whole seconds, at least 1s): the replica that runs the session sweeper and the notification sender hands over at most this long after it stops answering")
}

// validateStore checks the store flags. An etcd endpoint that is not
// loopback is refused without TLS unless Insecure is set, as a listen
// address is without authentication.
func (c Config) validateStore() []error {
	var errs []error
	if c.MaxStaleness != 0 && c.MaxStaleness < MinMaxStaleness {
		errs = append(errs, fmt.Errorf("max-staleness %v: want 0 (no bound) or at least %v, such as 30s: a shorter bound would turn replicas away at every etcd leader election", c.MaxStaleness, MinMaxStaleness))
	}
	e := c.Etcd
	etcdSet := e.Endpoints != "" || e.CA != "" || e.Cert != "" || e.Key != "" || e.Username != "" || e.PasswordFile != ""
	switch c.Store {
	case StoreBolt:
		if etcdSet {
			errs = append(errs, errors.New("etcd-endpoints, etcd-ca, etcd-cert, etcd-key, etcd-username and etcd-password-file need --store etcd"))
		}
		return errs
	case StoreEtcd:
	default:
		return append(errs, fmt.Errorf("store %q: want bolt or etcd", c.Store))
	}
	if len(e.EndpointList()) == 0 {
		errs = append(errs, errors.New("store etcd needs --etcd-endpoints (host:port,…)"))
	}
	for _, ep := range e.EndpointList() {
		host, err := endpointHost(ep)
		if err != nil {
			errs = append(errs, fmt.Errorf("etcd-endpoints %q: %w", ep, err))
			continue
		}
		if !isLoopback(host) && !e.TLS() && !c.Insecure {
			errs = append(errs, fmt.Errorf("etcd endpoint %q is not a loopback address and the connection is not secured; set --etcd-ca (and --etcd-cert, --etcd-key), or pass --insecure to use it anyway", ep))
		}
		// etcd's client connects to an http:// endpoint without TLS
		// whatever its TLS configuration says (and takes the scheme of
		// the first endpoint for all of them), so TLS and http:// do not
		// mix: the connection would not be what the flags promise.
		if e.TLS() && endpointScheme(ep) == "http" {
			errs = append(errs, fmt.Errorf("etcd endpoint %q is http:// but TLS is on (--etcd-ca, --etcd-cert or an https:// endpoint): etcd's client would connect to it without TLS; write it https://%s or as host:port", ep, strings.SplitN(ep, "://", 2)[1]))
		}
	}
	if e.Prefix == "" {
		errs = append(errs, errors.New("etcd-prefix must not be empty"))
	}
	if (e.Cert == "") != (e.Key == "") {
		errs = append(errs, errors.New("etcd-cert and etcd-key go together"))
	}
	if (e.Username == "") != (e.PasswordFile == "") {
		errs = append(errs, errors.New("etcd-username and etcd-password-file go together"))
	}
	if e.DialTimeout <= 0 {
		errs = append(errs, errors.New("etcd-dial-timeout must be positive"))
	}
	if e.LeaderTTL < time.Second || e.LeaderTTL%time.Second != 0 {
		errs = append(errs, fmt.Errorf("etcd-leader-ttl %v: want whole seconds, at least 1s (etcd's lease unit)", e.LeaderTTL))
	}
	return errs
}

// Check validates the etcd flags as gatehoused --store etcd does; insecure
// is --insecure (a non-loopback endpoint without TLS is refused without
// it).
func (e Etcd) Check(insecure bool) error {
	if e.LeaderTTL == 0 {
		// Only a daemon campaigns: a tool's flags need no TTL.
		e.LeaderTTL = defaultEtcd().LeaderTTL
	}
	c := Config{Store: StoreEtcd, Etcd: e, Insecure: insecure}
	return errors.Join(c.validateStore()...)
}

// endpointHost returns the host of an endpoint given as host:port or as
// an http:// or https:// URL.
func endpointHost(ep string) (string, error) {
	hostport := ep
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
			return "", errors.New("want host:port or an http(s)://host:port URL")
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || port == "" {
		return "", errors.New("want host:port or an http(s)://host:port URL")
	}
	return host, nil
}
