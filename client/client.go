package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strings"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// Defaults of Dial.
const (
	// DefaultTimeout is the deadline given to a call whose context has
	// none.
	DefaultTimeout = 2 * time.Second
	// DefaultKeepaliveTime is how long a connection may be silent before
	// the client pings the server. It is three times the server's default
	// keepalive minimum (10s), so the server never answers the pings with
	// GOAWAY "too_many_pings".
	DefaultKeepaliveTime = 30 * time.Second
	// DefaultKeepaliveTimeout is how long the client waits for a ping's
	// answer before it considers the connection dead and reconnects.
	DefaultKeepaliveTimeout = 10 * time.Second
	// DefaultMaxAttempts bounds the attempts of one call retried after an
	// overloaded server's RetryInfo delay, and of a read retried after
	// UNAVAILABLE (the first attempt included).
	DefaultMaxAttempts = 4
)

// userAgentPrefix starts the user agent of every connection.
const userAgentPrefix = "gatehouse-go-client/"

// modulePath is the module the client is part of.
const modulePath = "github.com/gatehouse-dev/gatehouse"

// Client is a connection to a Gatehouse server for session servers. It is
// safe for concurrent use; make one per process and Close it at the end.
type Client struct {
	conn     *grpc.ClientConn
	decide   gatehousev1.DecisionServiceClient
	sessions gatehousev1.SessionServiceClient
}

// Option configures Dial.
type Option func(*options)

type options struct {
	tls         *tls.Config
	insecure    bool
	bearer      string
	timeout     time.Duration
	kaTime      time.Duration
	kaTimeout   time.Duration
	maxAttempts int
	extra       []grpc.DialOption
}

// WithTLS connects with TLS configured by cfg: set RootCAs for a private
// CA and Certificates for mutual TLS. Without WithTLS or WithInsecure the
// client uses TLS with the system roots.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithInsecure connects without TLS. Dial refuses it unless the target is
// a loopback address (localhost, 127.0.0.0/8, ::1) or a unix socket.
func WithInsecure() Option { return func(o *options) { o.insecure = true } }

// WithBearerToken sends "authorization: Bearer <token>" with every call.
// Dial refuses it without TLS unless the target is loopback, so that the
// token never crosses a network in clear.
func WithBearerToken(token string) Option { return func(o *options) { o.bearer = token } }

// WithTimeout sets the deadline of calls whose context has none (default
// DefaultTimeout); 0 or less leaves such calls without a deadline.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithKeepalive sets the client keepalive: ping after time of silence,
// give up after timeout without answer. time must not be shorter than the
// server's --keepalive-min-time (default 10s) or the server closes the
// connection.
func WithKeepalive(time, timeout time.Duration) Option {
	return func(o *options) { o.kaTime, o.kaTimeout = time, timeout }
}

// WithMaxAttempts bounds the attempts of one retried call (default
// DefaultMaxAttempts; 1 turns retries off).
func WithMaxAttempts(n int) Option { return func(o *options) { o.maxAttempts = n } }

// WithDialOptions appends gRPC dial options after the client's own; a
// later option of the same kind replaces the client's.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.extra = append(o.extra, opts...) }
}

// ErrInsecureTarget is returned by Dial for a plaintext connection or a
// bearer token without TLS to a target that is not loopback.
var ErrInsecureTarget = errors.New("gatehouse: refusing a plaintext connection to a non-loopback target")

// Dial returns a client of the server at target ("host:port", or any gRPC
// target such as "dns:///host:port"). It does not wait for the connection:
// the first call connects.
func Dial(target string, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout, kaTime: DefaultKeepaliveTime, kaTimeout: DefaultKeepaliveTimeout, maxAttempts: DefaultMaxAttempts}
	for _, f := range opts {
		f(&o)
	}
	if o.maxAttempts < 1 {
		o.maxAttempts = 1
	}
	loopback := isLoopbackTarget(target)
	if o.insecure && o.tls != nil {
		return nil, errors.New("gatehouse: WithTLS and WithInsecure exclude each other")
	}
	if o.insecure && !loopback {
		return nil, fmt.Errorf("%w %q", ErrInsecureTarget, target)
	}
	var creds credentials.TransportCredentials
	switch {
	case o.insecure:
		creds = insecure.NewCredentials()
	case o.tls != nil:
		creds = credentials.NewTLS(o.tls)
	default:
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	dopts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent(userAgentPrefix + Version()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: o.kaTime, Timeout: o.kaTimeout, PermitWithoutStream: true}),
		grpc.WithDefaultServiceConfig(serviceConfig(o.maxAttempts)),
		// The default deadline comes first, so the retries run within it.
		grpc.WithChainUnaryInterceptor(defaultTimeout(o.timeout), retryAfterInfo(o.maxAttempts)),
	}
	if o.bearer != "" {
		dopts = append(dopts, grpc.WithPerRPCCredentials(bearer{token: o.bearer, secure: !loopback}))
	}
	dopts = append(dopts, o.extra...)
	conn, err := grpc.NewClient(target, dopts...)
	if err != nil {
		return nil, fmt.Errorf("gatehouse: dial %q: %w", target, err)
	}
	return &Client{conn: conn, decide: gatehousev1.NewDecisionServiceClient(conn), sessions: gatehousev1.NewSessionServiceClient(conn)}, nil
}

// Close closes the connection; calls in flight fail with CANCELED.
func (c *Client) Close() error { return c.conn.Close() }

// Conn returns the underlying connection, e.g. for the generated clients
// of calls the Client does not wrap.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Version is the client's module version as the build recorded it, or
// "devel".
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if bi.Main.Path == modulePath && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath && d.Version != "" {
			return d.Version
		}
	}
	return "devel"
}

// bearer is the per-call token credential.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity makes gRPC refuse to send the token over a
// plaintext connection, except to a loopback target.
func (b bearer) RequireTransportSecurity() bool { return b.secure }

// isLoopbackTarget reports whether target names this host: a unix socket,
// localhost, or a loopback IP, with or without a "dns:///",
// "passthrough:///", "ipv4:" or "ipv6:" scheme.
func isLoopbackTarget(target string) bool {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	rest := target
	for _, p := range []string{"dns:///", "passthrough:///", "ipv4:", "ipv6:"} {
		if r, ok := strings.CutPrefix(target, p); ok {
			rest = r
			break
		}
	}
	if strings.Contains(rest, ",") || strings.Contains(rest, "/") {
		return false // several addresses, or a scheme or authority not handled here
	}
	host, _, err := net.SplitHostPort(rest)
	if err != nil {
		host = strings.Trim(rest, "[]")
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
