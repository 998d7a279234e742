package config_test

import (
	"flag"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

func TestDefaultIsValid(t *testing.T) {
	c := config.Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
	if c.Insecure || c.Demo {
		t.Errorf("Default() has Insecure=%v Demo=%v, want both false", c.Insecure, c.Demo)
	}
	if l, err := c.Level(); err != nil || l.String() != "INFO" {
		t.Errorf("Default().Level() = %v, %v; want INFO, nil", l, err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*config.Config)
		// wantErr lists substrings the error must contain; nil means valid.
		wantErr []string
	}{
		{name: "default", edit: func(*config.Config) {}},
		{name: "loopback v4", edit: func(c *config.Config) { c.Listen = "127.0.0.1:8470" }},
		{name: "loopback v4 other address", edit: func(c *config.Config) { c.Listen = "127.1.2.3:1" }},
		{name: "loopback v4 port zero", edit: func(c *config.Config) { c.Listen = "127.0.0.1:0" }},
		{name: "loopback v6", edit: func(c *config.Config) { c.Listen = "[::1]:8470" }},
		{name: "localhost", edit: func(c *config.Config) { c.Listen = "localhost:8470" }},
		{name: "loopback with insecure", edit: func(c *config.Config) { c.Listen = "127.0.0.1:8470"; c.Insecure = true }},

		{name: "all interfaces v4", edit: func(c *config.Config) { c.Listen = "0.0.0.0:8470" }, wantErr: []string{`"0.0.0.0:8470"`, "loopback", "--insecure"}},
		{name: "all interfaces v6", edit: func(c *config.Config) { c.Listen = "[::]:8470" }, wantErr: []string{"--insecure"}},
		{name: "empty host", edit: func(c *config.Config) { c.Listen = ":8470" }, wantErr: []string{"--insecure"}},
		{name: "LAN v4", edit: func(c *config.Config) { c.Listen = "192.168.1.20:8470" }, wantErr: []string{`"192.168.1.20:8470"`, "--insecure"}},
		{name: "LAN v6", edit: func(c *config.Config) { c.Listen = "[fd00::1]:8470" }, wantErr: []string{"--insecure"}},
		{name: "host name", edit: func(c *config.Config) { c.Listen = "gatehouse.example.com:8470" }, wantErr: []string{"--insecure"}},
		{name: "all interfaces v4 insecure", edit: func(c *config.Config) { c.Listen = "0.0.0.0:8470"; c.Insecure = true }},
		{name: "all interfaces v6 insecure", edit: func(c *config.Config) { c.Listen = "[::]:8470"; c.Insecure = true }},
		{name: "empty host insecure", edit: func(c *config.Config) { c.Listen = ":8470"; c.Insecure = true }},
		{name: "LAN v4 insecure", edit: func(c *config.Config) { c.Listen = "192.168.1.20:8470"; c.Insecure = true }},
		{name: "host name insecure", edit: func(c *config.Config) { c.Listen = "gatehouse.example.com:8470"; c.Insecure = true }},

		{name: "address without port", edit: func(c *config.Config) { c.Listen = "127.0.0.1" }, wantErr: []string{`listen "127.0.0.1"`}},
		{name: "address without port insecure", edit: func(c *config.Config) { c.Listen = "127.0.0.1"; c.Insecure = true }, wantErr: []string{`listen "127.0.0.1"`}},
		{name: "empty address", edit: func(c *config.Config) { c.Listen = "" }, wantErr: []string{`listen ""`}},
		{name: "unbracketed v6", edit: func(c *config.Config) { c.Listen = "::1:8470" }, wantErr: []string{`listen "::1:8470"`}},

		{name: "empty data dir", edit: func(c *config.Config) { c.DataDir = "" }, wantErr: []string{"data-dir"}},

		{name: "log level debug", edit: func(c *config.Config) { c.LogLevel = "debug" }},
		{name: "log level warn", edit: func(c *config.Config) { c.LogLevel = "warn" }},
		{name: "log level error", edit: func(c *config.Config) { c.LogLevel = "error" }},
		{name: "log level upper case", edit: func(c *config.Config) { c.LogLevel = "WARN" }},
		{name: "bad log level", edit: func(c *config.Config) { c.LogLevel = "loud" }, wantErr: []string{`log-level "loud"`}},
		{name: "empty log level", edit: func(c *config.Config) { c.LogLevel = "" }, wantErr: []string{`log-level ""`}},

		{name: "log format text", edit: func(c *config.Config) { c.LogFormat = "text" }},
		{name: "bad log format", edit: func(c *config.Config) { c.LogFormat = "yaml" }, wantErr: []string{`log-format "yaml"`}},
		{name: "empty log format", edit: func(c *config.Config) { c.LogFormat = "" }, wantErr: []string{`log-format ""`}},

		{name: "short shutdown timeout", edit: func(c *config.Config) { c.ShutdownTimeout = time.Millisecond }},
		{name: "zero shutdown timeout", edit: func(c *config.Config) { c.ShutdownTimeout = 0 }, wantErr: []string{"shutdown-timeout"}},
		{name: "negative shutdown timeout", edit: func(c *config.Config) { c.ShutdownTimeout = -time.Second }, wantErr: []string{"shutdown-timeout"}},
		{name: "cobrowse domain with scheme", edit: func(c *config.Config) { c.CobrowseBaseDomain = "https://support.me" }, wantErr: []string{"cobrowse-base-domain"}},
		{name: "cobrowse domain single label", edit: func(c *config.Config) { c.CobrowseBaseDomain = "me" }, wantErr: []string{"cobrowse-base-domain"}},
		{name: "cobrowse domain upper case", edit: func(c *config.Config) { c.CobrowseBaseDomain = "Support.Me" }, wantErr: []string{"cobrowse-base-domain"}},
		{name: "cobrowse domain other", edit: func(c *config.Config) { c.CobrowseBaseDomain = "cobrowse.example.co.uk" }},
		{name: "unknown auth", edit: func(c *config.Config) { c.Auth = "magic" }, wantErr: []string{"auth"}},
		{name: "tls cert without key", edit: func(c *config.Config) { c.TLSCert = "c.pem" }, wantErr: []string{"tls-cert and tls-key"}},
		{name: "client ca without tls", edit: func(c *config.Config) { c.TLSClientCA = "ca.pem" }, wantErr: []string{"tls-client-ca"}},
		{name: "mtls on any address", edit: func(c *config.Config) {
			c.TLSCert, c.TLSKey, c.TLSClientCA, c.Listen = "c.pem", "k.pem", "ca.pem", "0.0.0.0:8470"
		}},
		{name: "token auth on any address", edit: func(c *config.Config) { c.Auth = "token"; c.Listen = "0.0.0.0:8470" }},

		{name: "smtp server", edit: func(c *config.Config) { c.SMTPAddr = "mail.example.com:25" }},
		{name: "smtp server loopback v6", edit: func(c *config.Config) { c.SMTPAddr = "[::1]:2525" }},
		{name: "outbox dir without smtp", edit: func(c *config.Config) { c.OutboxDir = "/var/spool/gatehouse" }},
		{name: "smtp without port", edit: func(c *config.Config) { c.SMTPAddr = "mail.example.com" }, wantErr: []string{`smtp-addr "mail.example.com"`}},
		{name: "smtp without host", edit: func(c *config.Config) { c.SMTPAddr = ":25" }, wantErr: []string{`smtp-addr ":25"`}},
		{name: "smtp and outbox dir", edit: func(c *config.Config) { c.SMTPAddr = "mail.example.com:25"; c.OutboxDir = "/x" }, wantErr: []string{"outbox-dir", "smtp-addr"}},
		{name: "smtp from with name", edit: func(c *config.Config) { c.SMTPFrom = "Gatehouse <gatehouse@example.com>" }, wantErr: []string{"smtp-from"}},
		{name: "smtp from not an address", edit: func(c *config.Config) { c.SMTPFrom = "gatehouse" }, wantErr: []string{"smtp-from"}},
		{name: "empty smtp from", edit: func(c *config.Config) { c.SMTPFrom = "" }, wantErr: []string{"smtp-from"}},
		{name: "smtp from other", edit: func(c *config.Config) { c.SMTPFrom = "noreply@support.example.com" }},
		{name: "smtp with credentials", edit: func(c *config.Config) {
			c.SMTPAddr, c.SMTPUsername, c.SMTPPasswordFile, c.SMTPImplicitTLS = "mail.example.com:465", "gh", "/run/pw", true
		}},
		{name: "smtp username without password", edit: func(c *config.Config) { c.SMTPAddr, c.SMTPUsername = "mail.example.com:587", "gh" }, wantErr: []string{"smtp-username and smtp-password-file"}},
		{name: "smtp password without username", edit: func(c *config.Config) { c.SMTPAddr, c.SMTPPasswordFile = "mail.example.com:587", "/run/pw" }, wantErr: []string{"smtp-username and smtp-password-file"}},
		{name: "smtp implicit tls without server", edit: func(c *config.Config) { c.SMTPImplicitTLS = true }, wantErr: []string{"need smtp-addr"}},

		{name: "small message limit", edit: func(c *config.Config) { c.MaxRecvMsgSize = 1024 }},
		{name: "tiny message limit", edit: func(c *config.Config) { c.MaxRecvMsgSize = 1023 }, wantErr: []string{"max-recv-msg-size 1023"}},
		{name: "one call at a time", edit: func(c *config.Config) { c.MaxInflight = 1 }},
		{name: "no calls at all", edit: func(c *config.Config) { c.MaxInflight = 0 }, wantErr: []string{"max-inflight 0"}},
		{name: "negative inflight", edit: func(c *config.Config) { c.MaxInflight = -5 }, wantErr: []string{"max-inflight -5"}},
		{name: "no per-caller share", edit: func(c *config.Config) { c.MaxInflightPerCaller = 0 }},
		{name: "negative per-caller share", edit: func(c *config.Config) { c.MaxInflightPerCaller = -1 }, wantErr: []string{"max-inflight-per-caller -1"}},
		{name: "one stream", edit: func(c *config.Config) {
			c.MaxStreams, c.MaxStreamsPerCaller, c.MaxMetaStreams, c.MaxConnStreams = 1, 1, 1, 1
		}},
		{name: "no per-caller stream limit", edit: func(c *config.Config) { c.MaxStreamsPerCaller = 0 }},
		{name: "no streams", edit: func(c *config.Config) { c.MaxStreams = 0 }, wantErr: []string{"max-streams 0"}},
		{name: "negative per-caller streams", edit: func(c *config.Config) { c.MaxStreamsPerCaller = -1 }, wantErr: []string{"max-streams-per-caller -1"}},
		{name: "no meta streams", edit: func(c *config.Config) { c.MaxMetaStreams = 0 }, wantErr: []string{"max-meta-streams 0"}},
		{name: "no streams per connection", edit: func(c *config.Config) { c.MaxConnStreams = -2 }, wantErr: []string{"max-conn-streams -2"}},
		{name: "public reflection", edit: func(c *config.Config) { c.Reflection = "public" }},
		{name: "reflection off", edit: func(c *config.Config) { c.Reflection = "off" }},
		{name: "reflection unknown", edit: func(c *config.Config) { c.Reflection = "yes" }, wantErr: []string{`reflection "yes"`}},
		{name: "queue shedding off", edit: func(c *config.Config) { c.ShedQueueTarget = 0 }},
		{name: "negative queue target", edit: func(c *config.Config) { c.ShedQueueTarget = -time.Millisecond }, wantErr: []string{"shed-queue-target -1ms"}},
		{name: "caller CPU share off", edit: func(c *config.Config) { c.CallerCPUShare = 0 }},
		{name: "caller CPU share above 1", edit: func(c *config.Config) { c.CallerCPUShare = 1.5 }, wantErr: []string{"caller-cpu-share 1.5"}},
		{name: "queue interval not above target", edit: func(c *config.Config) { c.ShedQueueInterval = c.ShedQueueTarget }, wantErr: []string{"shed-queue-interval 3ms"}},
		{name: "short decision timeout", edit: func(c *config.Config) { c.DecisionTimeout = time.Millisecond }},
		{name: "zero decision timeout", edit: func(c *config.Config) { c.DecisionTimeout = 0 }, wantErr: []string{"decision-timeout"}},
		{name: "stats every minute", edit: func(c *config.Config) { c.StatsInterval = time.Minute }},
		{name: "negative stats interval", edit: func(c *config.Config) { c.StatsInterval = -time.Second }, wantErr: []string{"stats-interval"}},
		{name: "negative session max age", edit: func(c *config.Config) { c.SessionMaxAge = -time.Hour }, wantErr: []string{"session-max-age"}},
		{name: "negative session retention", edit: func(c *config.Config) { c.SessionRetention = -time.Hour }, wantErr: []string{"session-retention"}},

		{name: "pprof on loopback metrics", edit: func(c *config.Config) { c.Pprof = true; c.MetricsAddr = "127.0.0.1:9470" }},
		{name: "pprof on localhost metrics", edit: func(c *config.Config) { c.Pprof = true; c.MetricsAddr = "localhost:9470" }},
		{name: "pprof without metrics", edit: func(c *config.Config) { c.Pprof = true }, wantErr: []string{"pprof", "--metrics-addr"}},
		{name: "pprof on all interfaces", edit: func(c *config.Config) { c.Pprof = true; c.MetricsAddr = ":9470" }, wantErr: []string{`pprof`, `metrics-addr ":9470"`, "--insecure"}},
		{name: "pprof on LAN metrics", edit: func(c *config.Config) { c.Pprof = true; c.MetricsAddr = "10.0.0.7:9470" }, wantErr: []string{`metrics-addr "10.0.0.7:9470"`}},
		{name: "pprof on LAN metrics insecure", edit: func(c *config.Config) { c.Pprof = true; c.MetricsAddr = "10.0.0.7:9470"; c.Insecure = true }},
		{name: "metrics on LAN without pprof", edit: func(c *config.Config) { c.MetricsAddr = "10.0.0.7:9470" }},
		{name: "Go's default GC", edit: func(c *config.Config) { c.GCPercent = 100 }},
		{name: "zero gc percent", edit: func(c *config.Config) { c.GCPercent = 0 }, wantErr: []string{"gc-percent 0"}},
		{name: "negative gc percent", edit: func(c *config.Config) { c.GCPercent = -1 }, wantErr: []string{"gc-percent -1"}},
		{name: "no slow-call logging", edit: func(c *config.Config) { c.LogSlowCall = 0 }},
		{name: "negative slow call", edit: func(c *config.Config) { c.LogSlowCall = -time.Second }, wantErr: []string{"log-slow-call"}},
		{name: "call log unbounded", edit: func(c *config.Config) { c.CallLogRate = 0 }},
		{name: "negative call log rate", edit: func(c *config.Config) { c.CallLogRate = -1 }, wantErr: []string{"call-log-rate -1"}},

		{name: "otel collector", edit: func(c *config.Config) { c.OTelEndpoint = "otel-collector.observability:4317" }},
		{name: "otel collector loopback v6", edit: func(c *config.Config) { c.OTelEndpoint = "[::1]:4317" }},
		{name: "otel collector insecure", edit: func(c *config.Config) { c.OTelEndpoint = "10.0.0.7:4317"; c.OTelInsecure = true }},
		{name: "otel insecure without endpoint is ignored", edit: func(c *config.Config) { c.OTelInsecure = true }},
		{name: "otel endpoint without port", edit: func(c *config.Config) { c.OTelEndpoint = "otel-collector" }, wantErr: []string{`otel-endpoint "otel-collector"`}},
		{name: "otel endpoint without host", edit: func(c *config.Config) { c.OTelEndpoint = ":4317" }, wantErr: []string{`otel-endpoint ":4317"`}},
		{name: "otel endpoint as URL", edit: func(c *config.Config) { c.OTelEndpoint = "http://otel-collector:4317" }, wantErr: []string{`otel-endpoint "http://otel-collector:4317"`}},
		{name: "otel endpoint named port", edit: func(c *config.Config) { c.OTelEndpoint = "otel-collector:otlp" }, wantErr: []string{`otel-endpoint "otel-collector:otlp"`}},
		{name: "otel endpoint port zero", edit: func(c *config.Config) { c.OTelEndpoint = "otel-collector:0" }, wantErr: []string{`otel-endpoint "otel-collector:0"`}},
		{name: "otel endpoint port too large", edit: func(c *config.Config) { c.OTelEndpoint = "otel-collector:65536" }, wantErr: []string{`otel-endpoint "otel-collector:65536"`}},
		{name: "sample nothing", edit: func(c *config.Config) { c.OTelSampleRatio = 0 }},
		{name: "sample everything", edit: func(c *config.Config) { c.OTelSampleRatio = 1 }},
		{name: "negative sample ratio", edit: func(c *config.Config) { c.OTelSampleRatio = -0.1 }, wantErr: []string{"otel-sample-ratio -0.1"}},
		{name: "sample ratio above one", edit: func(c *config.Config) { c.OTelSampleRatio = 1.5 }, wantErr: []string{"otel-sample-ratio 1.5"}},
		{name: "sample ratio NaN", edit: func(c *config.Config) { c.OTelSampleRatio = math.NaN() }, wantErr: []string{"otel-sample-ratio NaN"}},
		{name: "sample ratio infinite", edit: func(c *config.Config) { c.OTelSampleRatio = math.Inf(1) }, wantErr: []string{"otel-sample-ratio +Inf"}},

		{
			name: "every problem is reported",
			edit: func(c *config.Config) {
				c.Listen = "10.0.0.1:8470"
				c.DataDir = ""
				c.LogLevel = "loud"
				c.LogFormat = "xml"
				c.ShutdownTimeout = 0
			},
			wantErr: []string{"--insecure", "data-dir", "log-level", "log-format", "shutdown-timeout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.edit(&c)
			err := c.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", c, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error containing %q", c, tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate(%+v) = %q, want it to contain %q", c, err, want)
				}
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	for flagName, want := range map[string]string{
		"data-dir":                "GATEHOUSE_DATA_DIR",
		"listen":                  "GATEHOUSE_LISTEN",
		"demo":                    "GATEHOUSE_DEMO",
		"insecure":                "GATEHOUSE_INSECURE",
		"log-level":               "GATEHOUSE_LOG_LEVEL",
		"metrics-addr":            "GATEHOUSE_METRICS_ADDR",
		"log-format":              "GATEHOUSE_LOG_FORMAT",
		"shutdown-timeout":        "GATEHOUSE_SHUTDOWN_TIMEOUT",
		"smtp-addr":               "GATEHOUSE_SMTP_ADDR",
		"smtp-from":               "GATEHOUSE_SMTP_FROM",
		"outbox-dir":              "GATEHOUSE_OUTBOX_DIR",
		"max-recv-msg-size":       "GATEHOUSE_MAX_RECV_MSG_SIZE",
		"max-inflight":            "GATEHOUSE_MAX_INFLIGHT",
		"max-inflight-per-caller": "GATEHOUSE_MAX_INFLIGHT_PER_CALLER",
		"shed-queue-target":       "GATEHOUSE_SHED_QUEUE_TARGET",
		"decision-timeout":        "GATEHOUSE_DECISION_TIMEOUT",
		"stats-interval":          "GATEHOUSE_STATS_INTERVAL",
		"otel-endpoint":           "GATEHOUSE_OTEL_ENDPOINT",
		"otel-insecure":           "GATEHOUSE_OTEL_INSECURE",
		"otel-sample-ratio":       "GATEHOUSE_OTEL_SAMPLE_RATIO",
	} {
		if got := config.EnvName(flagName); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

// parse registers a default Config on a fresh flag set, parses args and
// applies env as the environment.
func parse(t *testing.T, args []string, env map[string]string) (config.Config, error) {
	t.Helper()
	c := config.Default()
	fs := flag.NewFlagSet("gatehoused", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	err := config.ApplyEnv(fs, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	return c, err
}

func TestRegisterFlags(t *testing.T) {
	c, err := parse(t, []string{
		"--listen", "[::1]:9000", "--data-dir", "/var/lib/gatehouse", "--demo", "--insecure",
		"--http-addr", "[::1]:9001", "--http-max-body-bytes", "1048576",
		"--log-level", "debug", "--log-format", "text", "--shutdown-timeout", "250ms",
		"--cobrowse-base-domain", "cobrowse.example.com",
		"--smtp-addr", "mail.example.com:587", "--smtp-from", "noreply@example.com", "--outbox-dir", "/var/spool/gh",
		"--smtp-username", "gh", "--smtp-password-file", "/run/secrets/smtp", "--smtp-implicit-tls",
		"--max-recv-msg-size", "8388608", "--max-inflight", "64", "--max-inflight-per-caller", "16", "--shed-queue-target", "0", "--shed-queue-interval", "1s", "--caller-cpu-share", "0.5", "--decision-timeout", "250ms", "--stats-interval", "30s",
		"--max-streams", "2000", "--max-streams-per-caller", "0", "--max-meta-streams", "8", "--max-conn-streams", "100", "--reflection", "public",
		"--session-max-age", "2h", "--session-retention", "0",
		"--otel-endpoint", "otel-collector:4317", "--otel-insecure", "--otel-sample-ratio", "0.25",
		"--log-slow-call", "250ms", "--call-log-rate", "0", "--pprof", "--gc-percent", "150",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		Listen: "[::1]:9000", DataDir: "/var/lib/gatehouse", Demo: true, Insecure: true,
		HTTPAddr: "[::1]:9001", HTTPMaxBodyBytes: 1 << 20,
		Store: config.StoreBolt, Etcd: config.Default().Etcd, MaxStaleness: config.Default().MaxStaleness,
		LogLevel: "debug", LogFormat: "text", Auth: "none", AuditRetention: config.DefaultAuditRetention, ShutdownTimeout: 250 * time.Millisecond,
		SessionMaxAge: 2 * time.Hour, SessionRetention: 0,
		CobrowseBaseDomain: "cobrowse.example.com",
		SMTPAddr:           "mail.example.com:587", SMTPFrom: "noreply@example.com", OutboxDir: "/var/spool/gh",
		SMTPUsername: "gh", SMTPPasswordFile: "/run/secrets/smtp", SMTPImplicitTLS: true,
		MaxRecvMsgSize: 8 << 20, MaxInflight: 64, MaxInflightPerCaller: 16, ShedQueueInterval: time.Second, CallerCPUShare: 0.5, DecisionTimeout: 250 * time.Millisecond, StatsInterval: 30 * time.Second,
		MaxStreams: 2000, MaxStreamsPerCaller: 0, MaxMetaStreams: 8, MaxConnStreams: 100, Reflection: "public",
		OTelEndpoint: "otel-collector:4317", OTelInsecure: true, OTelSampleRatio: 0.25,
		LogSlowCall: 250 * time.Millisecond, CallLogRate: 0, Pprof: true, GCPercent: 150,
	}
	if c != want {
		t.Errorf("flags gave %+v, want %+v", c, want)
	}

	c, err = parse(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != config.Default() {
		t.Errorf("no flags and no environment gave %+v, want the defaults %+v", c, config.Default())
	}
}

func TestApplyEnv(t *testing.T) {
	allEnv := map[string]string{
		"GATEHOUSE_LISTEN":                  "0.0.0.0:9001",
		"GATEHOUSE_HTTP_ADDR":               "0.0.0.0:9002",
		"GATEHOUSE_HTTP_MAX_BODY_BYTES":     "4096",
		"GATEHOUSE_DATA_DIR":                "/srv/gatehouse",
		"GATEHOUSE_DEMO":                    "true",
		"GATEHOUSE_INSECURE":                "1",
		"GATEHOUSE_LOG_LEVEL":               "warn",
		"GATEHOUSE_LOG_FORMAT":              "text",
		"GATEHOUSE_SHUTDOWN_TIMEOUT":        "3s",
		"GATEHOUSE_COBROWSE_BASE_DOMAIN":    "co.example.org",
		"GATEHOUSE_SMTP_ADDR":               "smtp.example.org:25",
		"GATEHOUSE_SMTP_FROM":               "gh@example.org",
		"GATEHOUSE_SMTP_USERNAME":           "relay-user",
		"GATEHOUSE_SMTP_PASSWORD_FILE":      "/srv/smtp.pw",
		"GATEHOUSE_SMTP_IMPLICIT_TLS":       "true",
		"GATEHOUSE_OUTBOX_DIR":              "/srv/outbox",
		"GATEHOUSE_MAX_RECV_MSG_SIZE":       "2048",
		"GATEHOUSE_MAX_INFLIGHT":            "8",
		"GATEHOUSE_MAX_INFLIGHT_PER_CALLER": "2",
		"GATEHOUSE_SHED_QUEUE_TARGET":       "2ms",
		"GATEHOUSE_SHED_QUEUE_INTERVAL":     "50ms",
		"GATEHOUSE_CALLER_CPU_SHARE":        "0.1",
		"GATEHOUSE_DECISION_TIMEOUT":        "2s",
		"GATEHOUSE_STATS_INTERVAL":          "1m",
		"GATEHOUSE_SESSION_MAX_AGE":         "12h",
		"GATEHOUSE_SESSION_RETENTION":       "168h",
		"GATEHOUSE_OTEL_ENDPOINT":           "collector.example.org:4317",
		"GATEHOUSE_OTEL_INSECURE":           "true",
		"GATEHOUSE_OTEL_SAMPLE_RATIO":       "0.5",
		"GATEHOUSE_MAX_STREAMS":             "100",
		"GATEHOUSE_MAX_STREAMS_PER_CALLER":  "10",
		"GATEHOUSE_MAX_META_STREAMS":        "5",
		"GATEHOUSE_MAX_CONN_STREAMS":        "50",
		"GATEHOUSE_REFLECTION":              "off",
		"GATEHOUSE_LOG_SLOW_CALL":           "1s",
		"GATEHOUSE_CALL_LOG_RATE":           "5",
		"GATEHOUSE_PPROF":                   "true",
		"GATEHOUSE_GC_PERCENT":              "200",
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(*config.Config)
		wantErr []string
	}{
		{
			name: "no environment keeps defaults",
			want: func(*config.Config) {},
		},
		{
			name: "environment fills every unset flag",
			env:  allEnv,
			want: func(c *config.Config) {
				*c = config.Config{
					Listen: "0.0.0.0:9001", DataDir: "/srv/gatehouse", Demo: true, Insecure: true,
					HTTPAddr: "0.0.0.0:9002", HTTPMaxBodyBytes: 4096,
					Store: config.StoreBolt, Etcd: config.Default().Etcd, MaxStaleness: config.Default().MaxStaleness,
					LogLevel: "warn", LogFormat: "text", Auth: "none", AuditRetention: config.DefaultAuditRetention, ShutdownTimeout: 3 * time.Second,
					CobrowseBaseDomain: "co.example.org",
					SMTPAddr:           "smtp.example.org:25", SMTPFrom: "gh@example.org", OutboxDir: "/srv/outbox",
					SMTPUsername: "relay-user", SMTPPasswordFile: "/srv/smtp.pw", SMTPImplicitTLS: true,
					MaxRecvMsgSize: 2048, MaxInflight: 8, MaxInflightPerCaller: 2, DecisionTimeout: 2 * time.Second, StatsInterval: time.Minute,
					MaxStreams: 100, MaxStreamsPerCaller: 10, MaxMetaStreams: 5, MaxConnStreams: 50, Reflection: "off",
					ShedQueueTarget: 2 * time.Millisecond, ShedQueueInterval: 50 * time.Millisecond, CallerCPUShare: 0.1,
					SessionMaxAge: 12 * time.Hour, SessionRetention: 7 * 24 * time.Hour,
					OTelEndpoint: "collector.example.org:4317", OTelInsecure: true, OTelSampleRatio: 0.5,
					LogSlowCall: time.Second, CallLogRate: 5, Pprof: true, GCPercent: 200,
				}
			},
		},
		{
			name: "command-line flags win",
			args: []string{"--listen", "127.0.0.1:7000", "--data-dir", "/tmp/x", "--shutdown-timeout", "1s"},
			env:  allEnv,
			want: func(c *config.Config) {
				*c = config.Config{
					Listen: "127.0.0.1:7000", DataDir: "/tmp/x", Demo: true, Insecure: true,
					HTTPAddr: "0.0.0.0:9002", HTTPMaxBodyBytes: 4096,
					Store: config.StoreBolt, Etcd: config.Default().Etcd, MaxStaleness: config.Default().MaxStaleness,
					LogLevel: "warn", LogFormat: "text", Auth: "none", AuditRetention: config.DefaultAuditRetention, ShutdownTimeout: time.Second,
					CobrowseBaseDomain: "co.example.org",
					SMTPAddr:           "smtp.example.org:25", SMTPFrom: "gh@example.org", OutboxDir: "/srv/outbox",
					SMTPUsername: "relay-user", SMTPPasswordFile: "/srv/smtp.pw", SMTPImplicitTLS: true,
					MaxRecvMsgSize: 2048, MaxInflight: 8, MaxInflightPerCaller: 2, DecisionTimeout: 2 * time.Second, StatsInterval: time.Minute,
					MaxStreams: 100, MaxStreamsPerCaller: 10, MaxMetaStreams: 5, MaxConnStreams: 50, Reflection: "off",
					ShedQueueTarget: 2 * time.Millisecond, ShedQueueInterval: 50 * time.Millisecond, CallerCPUShare: 0.1,
					SessionMaxAge: 12 * time.Hour, SessionRetention: 7 * 24 * time.Hour,
					OTelEndpoint: "collector.example.org:4317", OTelInsecure: true, OTelSampleRatio: 0.5,
					LogSlowCall: time.Second, CallLogRate: 5, Pprof: true, GCPercent: 200,
				}
			},
		},
		{
			name: "a flag set to its default value still wins",
			args: []string{"--demo=false", "--insecure=false", "--listen", "127.0.0.1:8470"},
			env:  allEnv,
			want: func(c *config.Config) {
				*c = config.Config{
					Listen: "127.0.0.1:8470", DataDir: "/srv/gatehouse", Demo: false, Insecure: false,
					HTTPAddr: "0.0.0.0:9002", HTTPMaxBodyBytes: 4096,
					Store: config.StoreBolt, Etcd: config.Default().Etcd, MaxStaleness: config.Default().MaxStaleness,
					LogLevel: "warn", LogFormat: "text", Auth: "none", AuditRetention: config.DefaultAuditRetention, ShutdownTimeout: 3 * time.Second,
					CobrowseBaseDomain: "co.example.org",
					SMTPAddr:           "smtp.example.org:25", SMTPFrom: "gh@example.org", OutboxDir: "/srv/outbox",
					SMTPUsername: "relay-user", SMTPPasswordFile: "/srv/smtp.pw", SMTPImplicitTLS: true,
					MaxRecvMsgSize: 2048, MaxInflight: 8, MaxInflightPerCaller: 2, DecisionTimeout: 2 * time.Second, StatsInterval: time.Minute,
					MaxStreams: 100, MaxStreamsPerCaller: 10, MaxMetaStreams: 5, MaxConnStreams: 50, Reflection: "off",
					ShedQueueTarget: 2 * time.Millisecond, ShedQueueInterval: 50 * time.Millisecond, CallerCPUShare: 0.1,
					SessionMaxAge: 12 * time.Hour, SessionRetention: 7 * 24 * time.Hour,
					OTelEndpoint: "collector.example.org:4317", OTelInsecure: true, OTelSampleRatio: 0.5,
					LogSlowCall: time.Second, CallLogRate: 5, Pprof: true, GCPercent: 200,
				}
			},
		},
		{
			name: "unrelated variables are ignored",
			env:  map[string]string{"LISTEN": "0.0.0.0:1", "GATEHOUSE_PORT": "1", "gatehouse_listen": "0.0.0.0:2", "DATA_DIR": "/nope"},
			want: func(*config.Config) {},
		},
		{
			name:    "bad duration names the variable",
			env:     map[string]string{"GATEHOUSE_SHUTDOWN_TIMEOUT": "soon"},
			wantErr: []string{"GATEHOUSE_SHUTDOWN_TIMEOUT", `"soon"`},
		},
		{
			name:    "bad float names the variable",
			env:     map[string]string{"GATEHOUSE_OTEL_SAMPLE_RATIO": "1%"},
			wantErr: []string{"GATEHOUSE_OTEL_SAMPLE_RATIO", `"1%"`},
		},
		{
			name:    "bad bool names the variable",
			env:     map[string]string{"GATEHOUSE_DEMO": "maybe"},
			wantErr: []string{"GATEHOUSE_DEMO", `"maybe"`},
		},
		{
			name:    "every bad variable is named",
			env:     map[string]string{"GATEHOUSE_DEMO": "maybe", "GATEHOUSE_INSECURE": "perhaps", "GATEHOUSE_SHUTDOWN_TIMEOUT": "10"},
			wantErr: []string{"GATEHOUSE_DEMO", "GATEHOUSE_INSECURE", "GATEHOUSE_SHUTDOWN_TIMEOUT"},
		},
		{
			name: "a bad variable is not read when its flag is given",
			args: []string{"--shutdown-timeout", "2s", "--demo"},
			env:  map[string]string{"GATEHOUSE_SHUTDOWN_TIMEOUT": "soon", "GATEHOUSE_DEMO": "maybe"},
			want: func(c *config.Config) { c.ShutdownTimeout = 2 * time.Second; c.Demo = true },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, tt.args, tt.env)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("ApplyEnv = nil, want an error containing %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("ApplyEnv = %q, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			want := config.Default()
			tt.want(&want)
			if c != want {
				t.Errorf("got %+v\nwant %+v", c, want)
			}
		})
	}
}

// TestApplyEnvLooksUpOnlyUnsetFlags checks that the environment is asked
// exactly for the variables of the flags not given on the command line.
func TestApplyEnvLooksUpOnlyUnsetFlags(t *testing.T) {
	c := config.Default()
	fs := flag.NewFlagSet("gatehoused", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--listen", "127.0.0.1:1", "--log-format=text"}); err != nil {
		t.Fatal(err)
	}
	var asked []string
	err := config.ApplyEnv(fs, func(k string) (string, bool) {
		asked = append(asked, k)
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(asked)
	want := []string{
		"GATEHOUSE_ACCEPT_META_ROLLBACK", "GATEHOUSE_AUDIT_RETENTION", "GATEHOUSE_AUTH", "GATEHOUSE_BOOTSTRAP_TOKEN_FILE", "GATEHOUSE_CALLER_CPU_SHARE", "GATEHOUSE_CALL_LOG_RATE", "GATEHOUSE_COBROWSE_BASE_DOMAIN", "GATEHOUSE_DATA_DIR",
		"GATEHOUSE_DECISION_TIMEOUT", "GATEHOUSE_DEMO",
		"GATEHOUSE_ETCD_CA", "GATEHOUSE_ETCD_CERT", "GATEHOUSE_ETCD_DIAL_TIMEOUT", "GATEHOUSE_ETCD_ENDPOINTS", "GATEHOUSE_ETCD_KEY", "GATEHOUSE_ETCD_LEADER_TTL",
		"GATEHOUSE_ETCD_PASSWORD_FILE", "GATEHOUSE_ETCD_PREFIX", "GATEHOUSE_ETCD_USERNAME",
		"GATEHOUSE_GC_PERCENT", "GATEHOUSE_HTTP_ADDR", "GATEHOUSE_HTTP_MAX_BODY_BYTES", "GATEHOUSE_INSECURE", "GATEHOUSE_LOG_LEVEL",
		"GATEHOUSE_LOG_SLOW_CALL", "GATEHOUSE_MAX_CONN_STREAMS", "GATEHOUSE_MAX_INFLIGHT", "GATEHOUSE_MAX_INFLIGHT_PER_CALLER", "GATEHOUSE_MAX_META_STREAMS",
		"GATEHOUSE_MAX_RECV_MSG_SIZE", "GATEHOUSE_MAX_STALENESS", "GATEHOUSE_MAX_STREAMS", "GATEHOUSE_MAX_STREAMS_PER_CALLER", "GATEHOUSE_METRICS_ADDR",
		"GATEHOUSE_OTEL_ENDPOINT", "GATEHOUSE_OTEL_INSECURE", "GATEHOUSE_OTEL_SAMPLE_RATIO", "GATEHOUSE_OUTBOX_DIR", "GATEHOUSE_PPROF",
		"GATEHOUSE_REFLECTION", "GATEHOUSE_SESSION_MAX_AGE", "GATEHOUSE_SESSION_RETENTION", "GATEHOUSE_SHED_QUEUE_INTERVAL",
		"GATEHOUSE_SHED_QUEUE_TARGET",
		"GATEHOUSE_SHUTDOWN_TIMEOUT", "GATEHOUSE_SMTP_ADDR", "GATEHOUSE_SMTP_FROM",
		"GATEHOUSE_SMTP_IMPLICIT_TLS", "GATEHOUSE_SMTP_PASSWORD_FILE", "GATEHOUSE_SMTP_USERNAME", "GATEHOUSE_STATS_INTERVAL", "GATEHOUSE_STORE", "GATEHOUSE_TLS_CERT",
		"GATEHOUSE_TLS_CLIENT_CA", "GATEHOUSE_TLS_KEY",
	}
	if !slices.Equal(asked, want) {
		t.Errorf("looked up %q, want %q", asked, want)
	}
}

// TestEnvThenValidate checks the order the daemon uses: a non-loopback
// address from the environment is still refused without --insecure, and
// accepted when the environment also sets GATEHOUSE_INSECURE.
func TestEnvThenValidate(t *testing.T) {
	c, err := parse(t, nil, map[string]string{"GATEHOUSE_LISTEN": "0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Errorf("Validate after GATEHOUSE_LISTEN=0.0.0.0:0 = %v, want an error mentioning --insecure", err)
	}
	c, err = parse(t, nil, map[string]string{"GATEHOUSE_LISTEN": "0.0.0.0:0", "GATEHOUSE_INSECURE": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after GATEHOUSE_LISTEN=0.0.0.0:0 GATEHOUSE_INSECURE=true = %v, want nil", err)
	}
	c, err = parse(t, []string{"--insecure=false"}, map[string]string{"GATEHOUSE_LISTEN": "0.0.0.0:0", "GATEHOUSE_INSECURE": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil {
		t.Errorf("Validate with --insecure=false overriding GATEHOUSE_INSECURE=true = nil, want a refusal")
	}
}

func TestNotificationDir(t *testing.T) {
	c := config.Default()
	c.DataDir = "/var/lib/gatehouse"
	if got := c.NotificationDir(); got != "/var/lib/gatehouse/outbox" {
		t.Errorf("NotificationDir() = %q, want the outbox under the data dir", got)
	}
	c.OutboxDir = "/var/spool/gatehouse"
	if got := c.NotificationDir(); got != "/var/spool/gatehouse" {
		t.Errorf("NotificationDir() with OutboxDir = %q", got)
	}
	if d := config.Default(); d.SMTPAddr != "" || d.SMTPFrom != "gatehouse@localhost" || d.OutboxDir != "" {
		t.Errorf("Default() notification settings = %q %q %q", d.SMTPAddr, d.SMTPFrom, d.OutboxDir)
	}
}

func TestDefaultLimits(t *testing.T) {
	d := config.Default()
	if d.MaxRecvMsgSize != 4<<20 || d.MaxInflight != 1024 || d.DecisionTimeout != time.Second || d.StatsInterval != 0 {
		t.Errorf("Default() limits = %d bytes, %d in flight, decision timeout %v, stats every %v; want 4 MiB, 1024, 1s, never",
			d.MaxRecvMsgSize, d.MaxInflight, d.DecisionTimeout, d.StatsInterval)
	}
}

func TestDefaultTracing(t *testing.T) {
	d := config.Default()
	if d.OTelEndpoint != "" || d.OTelInsecure || d.OTelSampleRatio != 0.01 {
		t.Errorf("Default() tracing = endpoint %q, insecure %v, sample ratio %v; want off, false, 0.01",
			d.OTelEndpoint, d.OTelInsecure, d.OTelSampleRatio)
	}
}

func TestOTelPlaintext(t *testing.T) {
	for _, tt := range []struct {
		endpoint string
		insecure bool
		want     bool
	}{
		{"127.0.0.1:4317", false, true},
		{"127.0.0.53:4317", false, true},
		{"localhost:4317", false, true},
		{"[::1]:4317", false, true},
		{"otel-collector:4317", false, false},
		{"10.0.0.7:4317", false, false},
		{"[fd00::7]:4317", false, false},
		{"otel-collector:4317", true, true},
		{"127.0.0.1:4317", true, true},
	} {
		c := config.Default()
		c.OTelEndpoint, c.OTelInsecure = tt.endpoint, tt.insecure
		if got := c.OTelPlaintext(); got != tt.want {
			t.Errorf("OTelPlaintext() with endpoint %q, insecure %v = %v, want %v", tt.endpoint, tt.insecure, got, tt.want)
		}
	}
}

// TestValidate_HTTPAddr: the HTTP address follows the rule of --listen —
// beyond loopback only with authentication (or --insecure) — and an
// empty one turns HTTP off.
func TestValidate_HTTPAddr(t *testing.T) {
	for _, tt := range []struct {
		name    string
		mod     func(*config.Config)
		wantErr string
	}{
		{"default", func(*config.Config) {}, ""},
		{"off", func(c *config.Config) { c.HTTPAddr = "" }, ""},
		{"any address without auth", func(c *config.Config) { c.HTTPAddr = "0.0.0.0:8471" }, "http-addr"},
		{"public IP without auth", func(c *config.Config) { c.HTTPAddr = "192.0.2.1:8471" }, "not a loopback address"},
		{"any address with token auth", func(c *config.Config) { c.HTTPAddr = ":8471"; c.Auth = "token" }, ""},
		{"any address with --insecure", func(c *config.Config) { c.HTTPAddr = ":8471"; c.Insecure = true }, ""},
		{"any address with mutual TLS", func(c *config.Config) {
			c.HTTPAddr, c.TLSCert, c.TLSKey, c.TLSClientCA = ":8471", "c.pem", "k.pem", "ca.pem"
		}, ""},
		{"no port", func(c *config.Config) { c.HTTPAddr = "127.0.0.1" }, "http-addr"},
		{"body limit 0", func(c *config.Config) { c.HTTPMaxBodyBytes = 0 }, "http-max-body-bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}
