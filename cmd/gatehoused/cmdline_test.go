package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runBinary runs the daemon binary in dir with args and returns its exit
// code, stdout and stderr.
func runBinary(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = dir
	cmd.Env = environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// The daemon's command line: --help succeeds, a typo is one line with a
// suggestion and exit 2, a stray argument starts nothing, --version prints
// the version; a started daemon logs its version.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, arg := range []string{"--help", "-h"} {
		code, out, errs := runBinary(t, dir, arg)
		if code != 0 || !strings.Contains(out, "-data-dir") || errs != "" {
			t.Errorf("%s: exit %d, stdout %d bytes, stderr %q", arg, code, len(out), errs)
		}
	}
	for _, args := range [][]string{{"-lisen", "127.0.0.1:0"}, {"version"}, {"--data-dir", dir, "serve"}, {"--log-levle", "debug"}} {
		code, out, errs := runBinary(t, dir, args...)
		if code != 2 || out != "" || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "gatehoused:") {
			t.Errorf("%v: exit %d, want 2 and one line of stderr; stdout %q stderr:\n%s", args, code, out, errs)
		}
	}
	if code, _, errs := runBinary(t, dir, "-lisen", "x"); code != 2 || !strings.Contains(errs, "did you mean --listen?") {
		t.Errorf("-lisen: exit %d, %s", code, errs)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused command line left %v in the working directory", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Fatal("a refused command line created ./data")
	}
	code, out, _ := runBinary(t, dir, "--version")
	if code != 0 || !strings.HasPrefix(out, "gatehoused version ") {
		t.Fatalf("--version: exit %d, %q", code, out)
	}
	want := strings.TrimSpace(strings.TrimPrefix(out, "gatehoused version "))
	d := start(t, nil, loopbackArgs(t.TempDir())...)
	if e := d.mustLog("gatehoused starting"); e["version"] != want {
		t.Fatalf("start-up log version %v, --version %q", e["version"], want)
	}
	d.stop()
}

// A version stamped with -ldflags (as make build does) is what --version
// prints and the CLI's --version too.
func TestVersion_Stamped(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	dir := t.TempDir()
	for _, c := range []struct{ pkg, name, want string }{
		{".", "gatehoused", "gatehoused version v9.8.7-test\n"},
		{"../gatehouse", "gatehouse", "gatehouse version v9.8.7-test\n"},
	} {
		bin := filepath.Join(dir, c.name)
		if out, err := exec.Command("go", "build", "-buildvcs=false", "-ldflags", "-X github.com/gatehouse-dev/gatehouse/internal/buildinfo.Stamp=v9.8.7-test", "-o", bin, c.pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, "--version").Output()
		if err != nil || string(out) != c.want {
			t.Errorf("%s --version: %q, %v; want %q", c.name, out, err, c.want)
		}
	}
}
