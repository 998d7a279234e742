package main

import (
	"bufio"
	"flag"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

const (
	systemdUnit = "../../examples/systemd/gatehoused.service"
	systemdEnv  = "../../examples/systemd/gatehoused.env"
)

// unitSetting returns the values of key in a systemd unit file.
func unitSetting(t *testing.T, path, key string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), key+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// The example unit starts the daemon with flags it has, and with its
// environment file the command line parses and validates as the daemon
// would; every variable the environment file mentions (set or commented
// out) is a flag's.
func TestExamples_SystemdUnitMatchesTheFlags(t *testing.T) {
	t.Parallel()
	execStart := unitSetting(t, systemdUnit, "ExecStart")
	if len(execStart) != 1 {
		t.Fatalf("ExecStart lines: %q", execStart)
	}
	argv := strings.Fields(execStart[0])
	if !strings.HasSuffix(argv[0], "/gatehoused") {
		t.Fatalf("ExecStart runs %s", argv[0])
	}

	var known config.Config
	fs := flag.NewFlagSet("gatehoused", flag.ContinueOnError)
	known.RegisterFlags(fs)
	for _, a := range argv[1:] {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if fs.Lookup(name) == nil {
			t.Errorf("ExecStart passes %s, which gatehoused does not have", a)
		}
	}

	b, err := os.ReadFile(systemdEnv)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	mentioned := regexp.MustCompile(`(?m)^#?(GATEHOUSE_[A-Z0-9_]+)=(.*)$`)
	matches := mentioned.FindAllStringSubmatch(string(b), -1)
	if len(matches) < 5 {
		t.Fatalf("the environment file mentions %d variables", len(matches))
	}
	byEnv := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { byEnv[config.EnvName(f.Name)] = true })
	for _, m := range matches {
		if !byEnv[m[1]] {
			t.Errorf("%s in %s is no flag's variable", m[1], systemdEnv)
		}
		if !strings.HasPrefix(m[0], "#") {
			env[m[1]] = m[2]
		}
	}

	cfg := config.Default()
	if _, err := cfg.Parse(argv[1:], io.Discard, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatalf("ExecStart with the environment file: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("ExecStart with the environment file does not validate: %v", err)
	}
	if cfg.Auth != "token" || cfg.BootstrapTokenFile == "" {
		t.Errorf("the example runs with --auth %s, bootstrap token file %q", cfg.Auth, cfg.BootstrapTokenFile)
	}
	// systemd must wait out the drain before it kills.
	stop := unitSetting(t, systemdUnit, "TimeoutStopSec")
	if len(stop) != 1 {
		t.Fatalf("TimeoutStopSec: %q", stop)
	}
	d, err := time.ParseDuration(stop[0])
	if err != nil || d <= cfg.ShutdownTimeout {
		t.Errorf("TimeoutStopSec=%s does not exceed --shutdown-timeout %v", stop[0], cfg.ShutdownTimeout)
	}
}

// The daemon answers /healthz on its metrics address.
func TestE2E_HealthzOnMetricsAddr(t *testing.T) {
	t.Parallel()
	d := start(t, nil, loopbackArgs(t.TempDir(), "--metrics-addr", "127.0.0.1:0")...)
	addr, _ := d.mustLog("serving metrics")["metrics_addr"].(string)
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "SERVING" {
		t.Fatalf("/healthz: %d %q", resp.StatusCode, body)
	}
	d.stop()
}
