package config_test

import (
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// TestREADME_FlagTable keeps the README's configuration table true: every
// flag of gatehoused has a row, every row names a flag that exists, and a
// row's default, when it shows one in backticks, is the flag's (durations
// may drop zero minutes and seconds: `24h` for 24h0m0s).
func TestREADME_FlagTable(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	fs := flag.NewFlagSet("gatehoused", flag.ContinueOnError)
	c := config.Default()
	c.RegisterFlags(fs)

	flagName := regexp.MustCompile("`--([a-z0-9-]+)`")
	documented := map[string]bool{}
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "`--") {
			continue
		}
		for _, m := range flagName.FindAllStringSubmatch(cells[1], -1) {
			name := m[1]
			documented[name] = true
			f := fs.Lookup(name)
			if f == nil {
				t.Errorf("README documents --%s, which gatehoused does not have", name)
				continue
			}
			def := strings.TrimSpace(cells[2])
			if !strings.HasPrefix(def, "`") || strings.Contains(cells[1], ",") || f.DefValue == "" {
				continue // "—", "false", several flags in one row, or computed at start
			}
			shown := strings.Trim(strings.Fields(def)[0], "`")
			short := strings.TrimSuffix(strings.TrimSuffix(f.DefValue, "0s"), "0m")
			if f.DefValue == "0s" {
				short = "0"
			}
			if shown != f.DefValue && shown != short {
				t.Errorf("README shows --%s defaulting to %s; it defaults to %s", name, shown, f.DefValue)
			}
		}
	}
	var missing []string
	fs.VisitAll(func(f *flag.Flag) {
		if !documented[f.Name] {
			missing = append(missing, f.Name)
		}
	})
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("README's configuration table lacks %q", missing)
	}
}
