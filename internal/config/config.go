// Package config holds the daemon's configuration: defaults, flags with
// GATEHOUSE_<FLAG> environment fallbacks, and validation.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the daemon's configuration.
type Config struct {
	// Listen is the gRPC listen address (host:port).
	Listen string
	// HTTPAddr is the HTTP/JSON API's listen address (host:port); empty
	// serves no HTTP.
	HTTPAddr string
	// HTTPMaxBodyBytes bounds an HTTP request body.
	HTTPMaxBodyBytes int64
	// DataDir is the directory holding the bbolt file.
	DataDir string
	// Store is the store driver: bolt (DataDir) or etcd (Etcd).
	Store string
	// Etcd configures the etcd store.
	Etcd Etcd
	// MaxStaleness bounds the age of the data decisions are answered
	// from on a store a replica can fall behind (etcd): past it decisions
	// are refused and health reports NOT_SERVING. 0: no bound.
	MaxStaleness time.Duration
	// Demo seeds demo data into an empty store at start.
	Demo bool
	// Insecure allows serving a non-loopback address without
	// authentication (Auth "none").
	Insecure bool
	// Auth is "none" (every caller is an operator: loopback development)
	// or "token" (bearer tokens with roles and account scope).
	Auth string
	// BootstrapTokenFile, when set and the store has no operator token,
	// receives a new operator bearer token (mode 0600).
	BootstrapTokenFile string
	// AuditRetention is how long audit events are kept; 0 keeps them.
	AuditRetention time.Duration
	// SessionMaxAge ends active sessions this long after their start; 0
	// never does.
	SessionMaxAge time.Duration
	// SessionRetention deletes ended sessions this long after their end;
	// 0 keeps them.
	SessionRetention time.Duration
	// MetricsAddr is the host:port Prometheus metrics are served on at
	// /metrics; empty serves none.
	MetricsAddr string
	// TLSCert and TLSKey are PEM files of the server certificate; set both
	// to serve TLS. They are reloaded when they change.
	TLSCert, TLSKey string
	// TLSClientCA, when set, requires client certificates signed by it.
	TLSClientCA string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is json or text.
	LogFormat string
	// LogSlowCall is how long a successful call may take before its log
	// line is written at info; faster ones are logged at debug only. 0
	// logs no successful call at info.
	LogSlowCall time.Duration
	// CallLogRate bounds the log lines of failed calls a second, per gRPC
	// code, for the codes a caller can cause (refusals, invalid requests,
	// shed calls); past it lines are counted, not written. 0: no bound.
	CallLogRate int
	// Pprof serves net/http/pprof at /debug/pprof/ on MetricsAddr.
	Pprof bool
	// GCPercent is the garbage collector's target heap growth (Go's GOGC),
	// set at start unless the GOGC environment variable is set.
	GCPercent int
	// ShutdownTimeout bounds how long in-flight calls may run after SIGTERM.
	ShutdownTimeout time.Duration
	// CobrowseBaseDomain is the domain co-browse URLs are generated under.
	CobrowseBaseDomain string
	// SMTPAddr is the host:port of the SMTP server completed-session
	// notifications are sent through; empty writes them to OutboxDir.
	SMTPAddr string
	// SMTPFrom is the sender address of the notifications.
	SMTPFrom string
	// SMTPUsername, when set, authenticates to the SMTP server (AUTH
	// PLAIN, only over TLS or to a loopback server) with the password in
	// SMTPPasswordFile.
	SMTPUsername string
	// SMTPPasswordFile holds the SMTP password (trailing newline ignored).
	SMTPPasswordFile string
	// SMTPImplicitTLS speaks TLS from the first byte (SMTPS, port 465)
	// instead of upgrading with STARTTLS.
	SMTPImplicitTLS bool
	// OutboxDir is where notifications are written as files when SMTPAddr
	// is empty; empty means <DataDir>/outbox.
	OutboxDir string
	// MaxRecvMsgSize is the largest request message accepted, in bytes.
	MaxRecvMsgSize int
	// MaxInflight is how many unary calls may run at once; more are
	// refused with RESOURCE_EXHAUSTED.
	MaxInflight int
	// MaxInflightPerCaller is how many of them one account (or one
	// credential scoped to all accounts) may have running; 0 means no
	// limit but MaxInflight.
	MaxInflightPerCaller int
	// MaxStreams is how many API streams (WatchSessionPolicy, BackupStore)
	// may be open at once.
	MaxStreams int
	// MaxStreamsPerCaller is how many of them one account (or one
	// credential scoped to all accounts) may hold; 0 means no limit but
	// MaxStreams.
	MaxStreamsPerCaller int
	// MaxMetaStreams is how many health Watch and reflection streams may
	// be open at once, apart from MaxStreams.
	MaxMetaStreams int
	// MaxConnStreams is how many calls and streams one HTTP/2 connection
	// may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
	MaxConnStreams int
	// Reflection is public, authenticated or off.
	Reflection string
	// ShedQueueTarget and ShedQueueInterval shed decisions that queued for
	// the CPU too long (see server.Limits.QueueTarget); a ShedQueueTarget
	// of 0 turns queue-delay shedding off.
	ShedQueueTarget   time.Duration
	ShedQueueInterval time.Duration
	// CallerCPUShare is the share of the CPU one caller's calls may use
	// while it is contended, or an equal share among the active callers
	// when that is larger (see server.Limits.CallerCPUShare); 0 turns the
	// limit off.
	CallerCPUShare float64
	// DecisionTimeout is the deadline of a decision whose caller set none.
	DecisionTimeout time.Duration
	// StatsInterval is how often runtime statistics (goroutines, memory,
	// revision) are logged; 0 logs none.
	StatsInterval time.Duration
	// AcceptMetaRollback opens a store whose newest meta page is damaged
	// from the older one (losing the last commit) instead of refusing it.
	AcceptMetaRollback bool
	// OTelEndpoint is the host:port of an OTLP/gRPC trace collector; empty
	// (the default) turns tracing off.
	OTelEndpoint string
	// OTelInsecure sends spans to a non-loopback OTelEndpoint without TLS.
	// A loopback endpoint (a collector agent on the same host) is always
	// plaintext; see OTelPlaintext.
	OTelInsecure bool
	// OTelSampleRatio is the share of calls that arrive without a trace
	// context which start a new trace (default 0.01). A call that carries
	// one follows its caller's sampling decision.
	OTelSampleRatio float64
}

// DefaultAuditRetention is how long audit events are kept by default:
// 400 days. Who changed a policy is asked about in yearly audits (PCI DSS
// keeps audit trails a year; SOC 2 and ISO 27001 auditors review a year
// of changes), so a policy store keeps a full year and a month's margin
// for the audit to happen; longer (or 0: forever) is for a legal hold.
const DefaultAuditRetention = 400 * 24 * time.Hour

// Default returns the defaults: loopback on port 8470, ./data.
func Default() Config {
	return Config{
		Listen:               "127.0.0.1:8470",
		HTTPAddr:             "127.0.0.1:8471",
		HTTPMaxBodyBytes:     8 << 20,
		DataDir:              "./data",
		Store:                StoreBolt,
		Etcd:                 defaultEtcd(),
		MaxStaleness:         30 * time.Second,
		LogLevel:             "info",
		LogFormat:            "json",
		LogSlowCall:          100 * time.Millisecond,
		CallLogRate:          20,
		GCPercent:            400,
		Auth:                 "none",
		AuditRetention:       DefaultAuditRetention,
		SessionMaxAge:        24 * time.Hour,
		SessionRetention:     30 * 24 * time.Hour,
		ShutdownTimeout:      10 * time.Second,
		CobrowseBaseDomain:   "support.me",
		SMTPFrom:             "gatehouse@localhost",
		MaxRecvMsgSize:       4 << 20,
		MaxInflight:          1024,
		MaxInflightPerCaller: 256,
		MaxStreams:           4096,
		MaxStreamsPerCaller:  256,
		MaxMetaStreams:       64,
		MaxConnStreams:       1024,
		Reflection:           "authenticated",
		ShedQueueTarget:      3 * time.Millisecond,
		ShedQueueInterval:    100 * time.Millisecond,
		CallerCPUShare:       0.1,
		DecisionTimeout:      time.Second,
		OTelSampleRatio:      0.01,
	}
}

// RegisterFlags binds c's fields to flags of fs, with c's values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "gRPC listen address `host:port`")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP/JSON API (and /openapi.json) listen address `host:port` (empty: no HTTP)")
	fs.Int64Var(&c.HTTPMaxBodyBytes, "http-max-body-bytes", c.HTTPMaxBodyBytes, "largest HTTP request body accepted, in `bytes` (larger: RESOURCE_EXHAUSTED, HTTP 413)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the bbolt store file")
	c.registerStoreFlags(fs)
	fs.BoolVar(&c.Demo, "demo", c.Demo, "seed demo data into an empty store")
	fs.BoolVar(&c.Insecure, "insecure", c.Insecure, "allow a non-loopback listen address without authentication")
	fs.StringVar(&c.Auth, "auth", c.Auth, "caller authentication: none (loopback development) or token (bearer tokens, and client certificates registered by identity when --tls-client-ca is set)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM `file` of the server certificate chain (with --tls-key: serve TLS)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM `file` of the server certificate's private key")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", c.TLSClientCA, "PEM `file` of the CA that client certificates must chain to (mutual TLS)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "serve Prometheus metrics on this `host:port` at /metrics (empty: none)")
	fs.DurationVar(&c.AuditRetention, "audit-retention", c.AuditRetention, "how long audit events are kept; the leader deletes older ones (0: forever)")
	fs.DurationVar(&c.SessionMaxAge, "session-max-age", c.SessionMaxAge, "end active sessions this long after their start, as EndSession would (0: never)")
	fs.DurationVar(&c.SessionRetention, "session-retention", c.SessionRetention, "delete ended sessions this long after their end; until then late checks answer SESSION_ENDED (0: forever)")
	fs.StringVar(&c.BootstrapTokenFile, "bootstrap-token-file", c.BootstrapTokenFile, "write a new operator token to this `file` when the store has none")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: json or text")
	fs.DurationVar(&c.LogSlowCall, "log-slow-call", c.LogSlowCall, "log a successful call that took at least this long at info (failed calls are logged within --call-log-rate, every call at debug; 0: no successful call at info)")
	fs.IntVar(&c.CallLogRate, "call-log-rate", c.CallLogRate, "log lines a second of failed calls per gRPC code, for the codes a caller can cause (all but INTERNAL, UNKNOWN, DATA_LOSS, UNIMPLEMENTED); lines past it are counted in gatehouse_call_log_suppressed_total and reported by the next line's suppressed attribute; the same bound applies to CheckHypothetical's dry-run lines and to the HTTP server's error lines (0: no bound)")
	fs.IntVar(&c.GCPercent, "gc-percent", c.GCPercent, "garbage collector target heap growth in `percent` (Go's GOGC; the GOGC environment variable, when set, wins)")
	fs.BoolVar(&c.Pprof, "pprof", c.Pprof, "serve net/http/pprof at /debug/pprof/ on --metrics-addr (which must be loopback unless --insecure)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long in-flight calls may finish after SIGTERM")
	fs.StringVar(&c.CobrowseBaseDomain, "cobrowse-base-domain", c.CobrowseBaseDomain, "domain of generated co-browse URLs (https://<name>.<domain>)")
	fs.StringVar(&c.SMTPAddr, "smtp-addr", c.SMTPAddr, "SMTP server `host:port` for completed-session notifications (empty: write them to --outbox-dir)")
	fs.StringVar(&c.SMTPFrom, "smtp-from", c.SMTPFrom, "sender `address` of completed-session notifications")
	fs.StringVar(&c.SMTPUsername, "smtp-username", c.SMTPUsername, "authenticate to the SMTP server as this `user` (AUTH PLAIN, only over TLS or to a loopback server)")
	fs.StringVar(&c.SMTPPasswordFile, "smtp-password-file", c.SMTPPasswordFile, "`file` holding the SMTP password, for --smtp-username")
	fs.BoolVar(&c.SMTPImplicitTLS, "smtp-implicit-tls", c.SMTPImplicitTLS, "speak TLS to the SMTP server from the first byte (SMTPS, usually port 465) instead of STARTTLS")
	fs.StringVar(&c.OutboxDir, "outbox-dir", c.OutboxDir, "directory completed-session notifications are written to without --smtp-addr (default <data-dir>/outbox)")
	fs.IntVar(&c.MaxRecvMsgSize, "max-recv-msg-size", c.MaxRecvMsgSize, "largest request message accepted, in `bytes` (larger: RESOURCE_EXHAUSTED)")
	fs.IntVar(&c.MaxInflight, "max-inflight", c.MaxInflight, "unary calls served at once; more are refused with RESOURCE_EXHAUSTED (health checks exempt)")
	fs.IntVar(&c.MaxInflightPerCaller, "max-inflight-per-caller", c.MaxInflightPerCaller, "unary calls one account (or one credential scoped to all accounts) may have running at once; more are refused with RESOURCE_EXHAUSTED (0: only --max-inflight)")
	fs.IntVar(&c.MaxStreams, "max-streams", c.MaxStreams, "API streams (WatchSessionPolicy, BackupStore) open at once; more are refused with RESOURCE_EXHAUSTED")
	fs.IntVar(&c.MaxStreamsPerCaller, "max-streams-per-caller", c.MaxStreamsPerCaller, "API streams one account (or one credential scoped to all accounts) may hold open (0: only --max-streams)")
	fs.IntVar(&c.MaxMetaStreams, "max-meta-streams", c.MaxMetaStreams, "health Watch and reflection streams open at once, apart from --max-streams")
	fs.IntVar(&c.MaxConnStreams, "max-conn-streams", c.MaxConnStreams, "calls and streams one HTTP/2 connection may have open at once (clients queue beyond it)")
	fs.StringVar(&c.Reflection, "reflection", c.Reflection, "server reflection: public (no credential), authenticated (any registered credential) or off")
	fs.DurationVar(&c.ShedQueueTarget, "shed-queue-target", c.ShedQueueTarget, "how long a decision should wait for the CPU: past the work the CPU serves within it, decisions are refused on arrival (RESOURCE_EXHAUSTED with RetryInfo, connections over their share first; health checks exempt; 0: off)")
	fs.Float64Var(&c.CallerCPUShare, "caller-cpu-share", c.CallerCPUShare, "share of the CPU one account's (or credential's) calls may use while the CPU is contended and other callers are active, or an equal share among the active callers when larger; past it its calls are held until the share refills (up to 200ms), or refused with RESOURCE_EXHAUSTED and RetryInfo (0: off)")
	fs.DurationVar(&c.ShedQueueInterval, "shed-queue-interval", c.ShedQueueInterval, "a queue stands after three intervals of this long in a row in each of which most decisions waited longer than shed-queue-target")
	fs.DurationVar(&c.DecisionTimeout, "decision-timeout", c.DecisionTimeout, "deadline of a decision whose caller sets none")
	fs.DurationVar(&c.StatsInterval, "stats-interval", c.StatsInterval, "log runtime statistics (goroutines, memory, revision) this often (0: never)")
	fs.BoolVar(&c.AcceptMetaRollback, "accept-meta-rollback", c.AcceptMetaRollback, "open a store file with one damaged meta page from the other one, which may lose the last commit (refused otherwise)")
	fs.StringVar(&c.OTelEndpoint, "otel-endpoint", c.OTelEndpoint, "send OpenTelemetry traces to the OTLP/gRPC collector at this `host:port` (empty: tracing off)")
	fs.BoolVar(&c.OTelInsecure, "otel-insecure", c.OTelInsecure, "send traces to a non-loopback --otel-endpoint without TLS (a loopback endpoint is always plaintext)")
	fs.Float64Var(&c.OTelSampleRatio, "otel-sample-ratio", c.OTelSampleRatio, "share (0 to 1) of calls without a caller's trace context that start a trace; calls with one follow the caller's decision")
}

// OTelPlaintext reports whether spans are sent to OTelEndpoint without
// TLS: when OTelInsecure is set, or when the endpoint is a loopback address
// (localhost, 127.0.0.0/8, ::1), where a collector agent on the same host
// listens in plaintext by default.
func (c Config) OTelPlaintext() bool {
	host, _, err := net.SplitHostPort(c.OTelEndpoint)
	return c.OTelInsecure || (err == nil && isLoopback(host))
}

// NotificationDir returns the directory notifications are written to when
// no SMTP server is configured.
func (c Config) NotificationDir() string {
	if c.OutboxDir != "" {
		return c.OutboxDir
	}
	return filepath.Join(c.DataDir, "outbox")
}

// EnvName returns the environment variable read for a flag: GATEHOUSE_ and
// the flag name upper-cased with dashes as underscores.
func EnvName(flagName string) string {
	return "GATEHOUSE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ApplyEnv sets every flag not given on the command line from its
// environment variable, when that is set. Flags win over the environment.
func ApplyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == VersionFlag {
			return
		}
		if v, ok := lookup(EnvName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// Validate checks c. A listen address that is not loopback is refused
// without authentication unless Insecure is set.
func (c Config) Validate() error {
	var errs []error
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	} else if !isLoopback(host) && !c.Insecure && c.Auth != "token" && c.TLSClientCA == "" {
		errs = append(errs, fmt.Errorf("listen %q is not a loopback address and callers are not authenticated; use --auth token, or pass --insecure to serve it anyway", c.Listen))
	}
	if c.HTTPAddr != "" {
		host, _, err := net.SplitHostPort(c.HTTPAddr)
		if err != nil {
			errs = append(errs, fmt.Errorf("http-addr %q: %w", c.HTTPAddr, err))
		} else if !isLoopback(host) && !c.Insecure && c.Auth != "token" && c.TLSClientCA == "" {
			errs = append(errs, fmt.Errorf("http-addr %q is not a loopback address and callers are not authenticated; use --auth token, or pass --insecure to serve it anyway", c.HTTPAddr))
		}
	}
	if c.HTTPMaxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("http-max-body-bytes %d: want at least 1", c.HTTPMaxBodyBytes))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls-cert and tls-key go together"))
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		errs = append(errs, errors.New("tls-client-ca needs tls-cert and tls-key"))
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("metrics-addr %q: %w", c.MetricsAddr, err))
		}
	}
	if c.Pprof {
		_, _, err := net.SplitHostPort(c.MetricsAddr)
		switch {
		case c.MetricsAddr == "":
			errs = append(errs, errors.New("pprof is served on --metrics-addr; set it (e.g. 127.0.0.1:9470)"))
		case err == nil && !LoopbackAddr(c.MetricsAddr) && !c.Insecure:
			errs = append(errs, fmt.Errorf("pprof would serve profiles and goroutine stacks to anyone reaching metrics-addr %q, which is not a loopback address; use a loopback metrics address, or pass --insecure to serve it anyway", c.MetricsAddr))
		}
	}
	if c.GCPercent < 1 {
		errs = append(errs, fmt.Errorf("gc-percent %d: want at least 1 (Go's default is 100)", c.GCPercent))
	}
	if c.LogSlowCall < 0 {
		errs = append(errs, errors.New("log-slow-call must not be negative"))
	}
	if c.CallLogRate < 0 {
		errs = append(errs, fmt.Errorf("call-log-rate %d: want 0 (no bound) or lines a second, such as 20", c.CallLogRate))
	}
	if c.AuditRetention < 0 {
		errs = append(errs, errors.New("audit-retention must not be negative"))
	}
	if c.SessionMaxAge < 0 || c.SessionRetention < 0 {
		errs = append(errs, errors.New("session-max-age and session-retention must not be negative"))
	}
	if c.Auth != "none" && c.Auth != "token" {
		errs = append(errs, fmt.Errorf("auth %q: want none or token", c.Auth))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir must not be empty"))
	}
	errs = append(errs, c.validateStore()...)
	if _, err := c.Level(); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log-format %q: want json or text", c.LogFormat))
	}
	if !validDomain(c.CobrowseBaseDomain) {
		errs = append(errs, fmt.Errorf("cobrowse-base-domain %q: want a lower-case DNS name such as support.me", c.CobrowseBaseDomain))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("shutdown-timeout must be positive"))
	}
	if c.SMTPAddr != "" {
		if host, port, err := net.SplitHostPort(c.SMTPAddr); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("smtp-addr %q: want host:port such as mail.example.com:25", c.SMTPAddr))
		}
		if c.OutboxDir != "" {
			errs = append(errs, errors.New("outbox-dir is used only without smtp-addr; set one of them"))
		}
	}
	if (c.SMTPUsername == "") != (c.SMTPPasswordFile == "") {
		errs = append(errs, errors.New("smtp-username and smtp-password-file go together"))
	}
	if c.SMTPAddr == "" && (c.SMTPUsername != "" || c.SMTPImplicitTLS) {
		errs = append(errs, errors.New("smtp-username, smtp-password-file and smtp-implicit-tls need smtp-addr"))
	}
	if a, err := mail.ParseAddress(c.SMTPFrom); err != nil || a.Address != c.SMTPFrom || a.Name != "" {
		errs = append(errs, fmt.Errorf("smtp-from %q: want a plain e-mail address such as gatehouse@example.com", c.SMTPFrom))
	}
	if c.MaxRecvMsgSize < 1024 {
		errs = append(errs, fmt.Errorf("max-recv-msg-size %d: want at least 1024 bytes", c.MaxRecvMsgSize))
	}
	if c.MaxInflight < 1 {
		errs = append(errs, fmt.Errorf("max-inflight %d: want at least 1", c.MaxInflight))
	}
	if c.MaxStreams < 1 {
		errs = append(errs, fmt.Errorf("max-streams %d: want at least 1", c.MaxStreams))
	}
	if c.MaxInflightPerCaller < 0 {
		errs = append(errs, fmt.Errorf("max-inflight-per-caller %d: want 0 (no limit but max-inflight) or more", c.MaxInflightPerCaller))
	}
	if c.MaxStreamsPerCaller < 0 {
		errs = append(errs, fmt.Errorf("max-streams-per-caller %d: want 0 (no limit but max-streams) or more", c.MaxStreamsPerCaller))
	}
	if c.MaxMetaStreams < 1 {
		errs = append(errs, fmt.Errorf("max-meta-streams %d: want at least 1", c.MaxMetaStreams))
	}
	if c.MaxConnStreams < 1 {
		errs = append(errs, fmt.Errorf("max-conn-streams %d: want at least 1", c.MaxConnStreams))
	}
	if c.Reflection != "public" && c.Reflection != "authenticated" && c.Reflection != "off" {
		errs = append(errs, fmt.Errorf("reflection %q: want public, authenticated or off", c.Reflection))
	}
	if c.CallerCPUShare < 0 || c.CallerCPUShare > 1 {
		errs = append(errs, fmt.Errorf("caller-cpu-share %g: want 0 (off) or a share of the CPU up to 1, such as 0.1", c.CallerCPUShare))
	}
	if c.ShedQueueTarget < 0 {
		errs = append(errs, fmt.Errorf("shed-queue-target %s: want 0 (off) or a positive duration such as 3ms", c.ShedQueueTarget))
	}
	if c.ShedQueueTarget > 0 && c.ShedQueueInterval <= c.ShedQueueTarget {
		errs = append(errs, fmt.Errorf("shed-queue-interval %s: want a duration longer than shed-queue-target %s, such as 100ms", c.ShedQueueInterval, c.ShedQueueTarget))
	}
	if c.DecisionTimeout <= 0 {
		errs = append(errs, errors.New("decision-timeout must be positive"))
	}
	if c.StatsInterval < 0 {
		errs = append(errs, errors.New("stats-interval must not be negative"))
	}
	if c.OTelEndpoint != "" {
		host, port, err := net.SplitHostPort(c.OTelEndpoint)
		if n, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil || n == 0 {
			errs = append(errs, fmt.Errorf("otel-endpoint %q: want the host:port of an OTLP/gRPC collector such as otel-collector:4317", c.OTelEndpoint))
		}
	}
	// Written so that NaN fails too.
	if !(c.OTelSampleRatio >= 0 && c.OTelSampleRatio <= 1) {
		errs = append(errs, fmt.Errorf("otel-sample-ratio %v: want a number from 0 to 1", c.OTelSampleRatio))
	}
	return errors.Join(errs...)
}

// Level returns the slog level of LogLevel.
func (c Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return l, fmt.Errorf("log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// LoopbackAddr reports whether the host of the host:port addr is a
// loopback address (localhost, 127.0.0.0/8, ::1).
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopback(host)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validDomain reports whether d is a lower-case DNS name of at least two
// labels of letters, digits and inner hyphens.
func validDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(d) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}
