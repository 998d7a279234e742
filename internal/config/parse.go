package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// VersionFlag is the flag that prints the version. It is a command, not a
// setting: it has no environment variable.
const VersionFlag = "version"

// ErrVersion is returned by Parse when --version was given.
var ErrVersion = errors.New("version requested")

// UsageError is a command line that does not parse: an unknown flag, a bad
// flag value, a stray argument. It says what is wrong in one line, with the
// nearest flag when one is close, instead of the whole flag list.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() + " (gatehoused --help lists the flags)" }
func (e UsageError) Unwrap() error { return e.Err }

// Parse reads the daemon's command line into c: the flags in args, then
// the environment (GATEHOUSE_<FLAG>) for the flags args does not give.
// --help and -h write the usage to stdout and return flag.ErrHelp;
// --version returns ErrVersion. A command line that does not parse, and
// any argument that is not a flag, is a UsageError. Parse does not
// Validate c.
func (c *Config) Parse(args []string, stdout io.Writer, lookup func(string) (string, bool)) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet("gatehoused", flag.ContinueOnError)
	c.RegisterFlags(fs)
	version := fs.Bool(VersionFlag, false, "print the version and exit")
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		PrintUsage(stdout, fs)
		return fs, flag.ErrHelp
	case err != nil:
		return fs, UsageError{fmt.Errorf("%w%s", err, suggestFlag(fs, undefinedFlag(err)))}
	case *version:
		return fs, ErrVersion
	case fs.NArg() > 0:
		arg := fs.Arg(0)
		return fs, UsageError{fmt.Errorf("unexpected argument %q: gatehoused takes flags only%s", arg, suggestFlag(fs, arg))}
	}
	return fs, ApplyEnv(fs, lookup)
}

// PrintUsage writes the daemon's usage: every flag with its default.
func PrintUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `Usage: gatehoused [flags]
       gatehoused migrate --to etcd|bolt [flags]  (copy the store between
                         bbolt and etcd; gatehoused migrate --help)

gatehoused serves the Gatehouse gRPC API (policy decisions, sessions,
administration) over a bbolt store until SIGINT or SIGTERM. Every flag but
--%s is also read from GATEHOUSE_<FLAG> (e.g. GATEHOUSE_DATA_DIR); a flag
on the command line wins.

Flags:
`, VersionFlag)
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// undefinedFlag returns the name in the flag package's "flag provided but
// not defined: -name" error, else "".
func undefinedFlag(err error) string {
	_, name, ok := strings.Cut(err.Error(), "flag provided but not defined: ")
	if !ok {
		return ""
	}
	return name
}

// suggestFlag returns "; did you mean --name?" for the flag nearest to s
// ("-lisen", "listen", "version"), or "" when none is close.
func suggestFlag(fs *flag.FlagSet, s string) string {
	s = strings.TrimLeft(s, "-")
	if name, _, ok := strings.Cut(s, "="); ok {
		s = name
	}
	if s == "" {
		return ""
	}
	best, bestD := "", 0
	fs.VisitAll(func(f *flag.Flag) {
		d := editDistance(strings.ToLower(s), f.Name)
		if best == "" || d < bestD {
			best, bestD = f.Name, d
		}
	})
	if s == "help" || s == "h" {
		best, bestD = "help", 0
	}
	if best == "" || bestD > max(2, len(s)/3) {
		return ""
	}
	return fmt.Sprintf("; did you mean --%s?", best)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
