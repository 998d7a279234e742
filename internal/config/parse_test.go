package config_test

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

func parseArgs(args []string, env map[string]string) (config.Config, string, error) {
	c := config.Default()
	var out bytes.Buffer
	_, err := c.Parse(args, &out, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return c, out.String(), err
}

func TestParse_Help(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "-help"} {
		_, out, err := parseArgs([]string{arg}, nil)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s: %v, want flag.ErrHelp", arg, err)
		}
		for _, want := range []string{"Usage: gatehoused", "-listen", "-data-dir", "-version", "GATEHOUSE_"} {
			if !strings.Contains(out, want) {
				t.Fatalf("%s: usage lacks %q:\n%s", arg, want, out)
			}
		}
	}
}

// A bad command line is one line naming the problem and, when close, the
// flag meant; never the whole usage.
func TestParse_UsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-lisen", "x"}, "did you mean --listen?"},
		{[]string{"--data-dri", "x"}, "did you mean --data-dir?"},
		{[]string{"--metrics-adr=:9"}, "did you mean --metrics-addr?"},
		{[]string{"--zzzzzzzzzz"}, "not defined: -zzzzzzzzzz"},
		{[]string{"version"}, `unexpected argument "version": gatehoused takes flags only; did you mean --version?`},
		{[]string{"--listen", "127.0.0.1:1", "serve"}, `unexpected argument "serve"`},
		{[]string{"help"}, "did you mean --help?"},
		{[]string{"--session-max-age", "soon"}, "session-max-age"},
	} {
		_, out, err := parseArgs(tc.args, nil)
		var u config.UsageError
		if !errors.As(err, &u) {
			t.Errorf("%v: %v, want a UsageError", tc.args, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%v: %q, want one line containing %q", tc.args, msg, tc.want)
		}
		if out != "" {
			t.Errorf("%v: printed %q", tc.args, out)
		}
	}
}

func TestParse_VersionAndEnvironment(t *testing.T) {
	if _, _, err := parseArgs([]string{"--version"}, nil); !errors.Is(err, config.ErrVersion) {
		t.Fatalf("--version: %v", err)
	}
	// --version is a command: no GATEHOUSE_VERSION, which a deployment may
	// well set for its own purposes.
	c, _, err := parseArgs([]string{"--listen", "127.0.0.1:1"}, map[string]string{"GATEHOUSE_VERSION": "1.2.3", "GATEHOUSE_DATA_DIR": "/srv/gh"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:1" || c.DataDir != "/srv/gh" {
		t.Fatalf("listen %q data dir %q", c.Listen, c.DataDir)
	}
}
