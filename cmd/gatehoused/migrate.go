package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/storecopy"
)

// migrateCommand is the subcommand that copies a store between drivers.
const migrateCommand = "migrate"

// migrateUsageError is a migrate command line that does not parse.
type migrateUsageError struct{ err error }

func (e migrateUsageError) Error() string {
	return e.err.Error() + " (gatehoused migrate --help lists its flags)"
}
func (e migrateUsageError) Unwrap() error { return e.err }

// migration is the parsed command line of gatehoused migrate.
type migration struct {
	to       string
	dataDir  string
	boltFile string
	etcd     config.Etcd
	insecure bool
	force    bool
	check    bool
	output   string
}

// migrateReport is what gatehoused migrate prints.
type migrateReport struct {
	From string `json:"from"`
	To   string `json:"to"`
	storecopy.Report
	// Verified is the number of keys found equal in the target.
	Verified int `json:"verified_keys"`
	// CheckOnly is true for --check: nothing was copied.
	CheckOnly bool `json:"check_only"`
}

const migrateUsage = `Usage: gatehoused migrate --to etcd|bolt [flags]

Copy the whole store between bbolt and etcd, offline: every key, read in one
transaction at one source revision, is written into the target (in
transactions within etcd's limits, or loaded into a new bbolt file at the
source's revision), then the target is read back and compared key by key
with what was read (count and values). Stop the daemons on the target first,
and on a bbolt source (a bbolt file in use is refused); an etcd source may
keep serving, but writes after the copy's revision are not in the copy.

  --to etcd   copies the bbolt store (--data-dir, or --bolt-file such as a
              backup) into etcd under --etcd-prefix; refused when the prefix
              holds keys, unless --force (then the prefix ends equal to the
              source: other keys are deleted).
  --to bolt   copies etcd's keys under --etcd-prefix into a new bbolt file,
              written beside the target and renamed over it once verified;
              refused when the target holds keys, unless --force.
  --check     copies nothing: compares the target with the source now.

The store flags are the daemon's, also read from GATEHOUSE_<FLAG>, with the
same refusal of a non-loopback etcd endpoint without TLS (--insecure).

Flags:
`

// runMigrate runs gatehoused migrate with args (after the subcommand).
func runMigrate(ctx context.Context, args []string, stdout io.Writer, lookup func(string) (string, bool)) error {
	def := config.Default()
	m := migration{dataDir: def.DataDir, etcd: def.Etcd, output: "text"}
	fs := flag.NewFlagSet("gatehoused migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&m.to, "to", "", "the store to copy into: etcd (from the bbolt file) or bolt (from etcd)")
	fs.StringVar(&m.dataDir, "data-dir", m.dataDir, "directory of the bbolt store (its file gatehouse.db)")
	fs.StringVar(&m.boltFile, "bolt-file", "", "bbolt store `file` of any name (a backup), instead of <data-dir>/gatehouse.db")
	fs.StringVar(&m.etcd.Endpoints, "etcd-endpoints", "", "comma-separated etcd client endpoints (`host:port` or http(s) URLs)")
	fs.StringVar(&m.etcd.Prefix, "etcd-prefix", m.etcd.Prefix, "etcd key prefix of the Gatehouse keys")
	fs.StringVar(&m.etcd.CA, "etcd-ca", "", "PEM `file` of the CA the etcd server certificates chain to (turns TLS on)")
	fs.StringVar(&m.etcd.Cert, "etcd-cert", "", "PEM `file` of the client certificate presented to etcd (with --etcd-key)")
	fs.StringVar(&m.etcd.Key, "etcd-key", "", "PEM `file` of the etcd client certificate's private key")
	fs.StringVar(&m.etcd.Username, "etcd-username", "", "authenticate to etcd as this `user` (with --etcd-password-file)")
	fs.StringVar(&m.etcd.PasswordFile, "etcd-password-file", "", "`file` holding the etcd password")
	fs.DurationVar(&m.etcd.DialTimeout, "etcd-dial-timeout", m.etcd.DialTimeout, "how long to wait for etcd to answer")
	fs.BoolVar(&m.insecure, "insecure", false, "allow a non-loopback etcd endpoint without TLS")
	fs.BoolVar(&m.force, "force", false, "copy into a target that holds keys, replacing them all")
	fs.BoolVar(&m.check, "check", false, "copy nothing: compare the target with the source key by key")
	fs.StringVar(&m.output, "output", m.output, "report `format`: text or json")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, migrateUsage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return flag.ErrHelp
	case err != nil:
		return migrateUsageError{err}
	case fs.NArg() > 0:
		return migrateUsageError{fmt.Errorf("unexpected argument %q: gatehoused migrate takes flags only", fs.Arg(0))}
	}
	// The store flags come from the environment as the daemon's do; what
	// the command does (--to, --force, --check, --output) only from the
	// command line.
	storeEnv := func(k string) (string, bool) {
		switch k {
		case config.EnvName("to"), config.EnvName("force"), config.EnvName("check"), config.EnvName("output"):
			return "", false
		}
		return lookup(k)
	}
	if err := config.ApplyEnv(fs, storeEnv); err != nil {
		return migrateUsageError{err}
	}
	// Flags that parse but are refused fail as the daemon's do (exit 1).
	if err := m.validate(); err != nil {
		return err
	}
	rep, err := m.run(ctx)
	if err != nil {
		return err
	}
	if m.output == "json" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	if rep.CheckOnly {
		_, err = fmt.Fprintf(stdout, "%s equals %s at revision %d: %d keys\n", rep.To, rep.From, rep.SourceRevision, rep.Verified)
		return err
	}
	how := fmt.Sprintf("in %d write transaction%s, target now at revision %d", rep.Batches, plural(rep.Batches), rep.TargetRevision)
	if rep.Loaded {
		how = fmt.Sprintf("loaded at revision %d", rep.TargetRevision)
	}
	if rep.Deleted > 0 {
		how += fmt.Sprintf(", %d key%s the source lacks deleted", rep.Deleted, plural(rep.Deleted))
	}
	_, err = fmt.Fprintf(stdout, "copied %d keys (%d bytes of values) from %s at revision %d to %s, %s; verified %d keys\n",
		rep.Keys, rep.Bytes, rep.From, rep.SourceRevision, rep.To, how, rep.Verified)
	return err
}

func (m migration) validate() error {
	var errs []error
	if m.to != config.StoreEtcd && m.to != config.StoreBolt {
		errs = append(errs, fmt.Errorf("--to %q: want etcd or bolt", m.to))
	}
	if m.output != "text" && m.output != "json" {
		errs = append(errs, fmt.Errorf("--output %q: want text or json", m.output))
	}
	if m.boltFile == "" && m.dataDir == "" {
		errs = append(errs, errors.New("the bbolt side needs --data-dir or --bolt-file"))
	}
	if err := m.etcd.Check(m.insecure); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (m migration) boltPath() string {
	if m.boltFile != "" {
		return m.boltFile
	}
	return filepath.Join(m.dataDir, bolt.FileName)
}

func (m migration) describe() (boltSide, etcdSide string) {
	return "bbolt " + m.boltPath(), fmt.Sprintf("etcd %s prefix %s", m.etcd.Endpoints, m.etcd.Prefix)
}

func (m migration) run(ctx context.Context) (migrateReport, error) {
	var rep migrateReport
	boltSide, etcdSide := m.describe()
	opts, err := m.etcd.ClientOptions()
	if err != nil {
		return rep, err
	}
	es, err := etcd.Open(ctx, opts)
	if err != nil {
		return rep, err
	}
	defer es.Close()
	if m.to == config.StoreEtcd {
		rep.From, rep.To = boltSide, etcdSide
		src, err := openExisting(m.boltPath())
		if err != nil {
			return rep, fmt.Errorf("source: %w", err)
		}
		defer src.Close()
		return m.copyOrCheck(ctx, rep, src, es)
	}
	rep.From, rep.To = etcdSide, boltSide
	return m.toBolt(ctx, rep, es)
}

// openExisting opens the bbolt store at path, which must exist (Open
// would create an empty one).
func openExisting(path string) (*bolt.Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return bolt.OpenFile(path, bolt.Options{})
}

// copyOrCheck copies src into dst and verifies it, or with --check only
// compares them.
func (m migration) copyOrCheck(ctx context.Context, rep migrateReport, src, dst store.Store) (migrateReport, error) {
	if m.check {
		rep.CheckOnly = true
		d, err := storecopy.Take(ctx, src)
		if err != nil {
			return rep, fmt.Errorf("source: %w", err)
		}
		rep.SourceRevision, rep.Keys, rep.Bytes = d.Revision, d.Count(), d.Bytes
		rep.Verified, err = storecopy.Verify(ctx, dst, d)
		if err != nil {
			return rep, fmt.Errorf("%s differs from %s: %w", rep.To, rep.From, err)
		}
		return rep, nil
	}
	r, d, err := storecopy.Copy(ctx, src, dst, storecopy.Options{Force: m.force})
	rep.Report = r
	if errors.Is(err, storecopy.ErrTargetNotEmpty) {
		return rep, fmt.Errorf("%s holds keys already; nothing was copied (--force replaces them)", rep.To)
	}
	if err != nil {
		return rep, err
	}
	rep.Verified, err = storecopy.Verify(ctx, dst, d)
	if err != nil {
		return rep, fmt.Errorf("the copy in %s does not match what was read from %s (did something write to it?): %w", rep.To, rep.From, err)
	}
	return rep, nil
}

// toBolt copies etcd into a new bbolt file beside the target, verifies
// it, and renames it over the target: the target is either what it was
// or the complete, verified copy.
func (m migration) toBolt(ctx context.Context, rep migrateReport, src *etcd.Store) (migrateReport, error) {
	path := m.boltPath()
	if m.check {
		dst, err := openExisting(path)
		if err != nil {
			return rep, fmt.Errorf("target: %w", err)
		}
		defer dst.Close()
		return m.copyOrCheck(ctx, rep, src, dst)
	}
	if _, err := os.Stat(path); err == nil {
		// Opening the target takes its lock (a daemon using it makes this
		// fail) and holds it until the copy has replaced it.
		old, err := bolt.OpenFile(path, bolt.Options{})
		if err != nil {
			return rep, fmt.Errorf("target: %w", err)
		}
		defer old.Close()
		empty, err := storecopy.Empty(ctx, old)
		if err != nil {
			return rep, fmt.Errorf("target: %w", err)
		}
		if !empty && !m.force {
			return rep, fmt.Errorf("%s holds keys already; nothing was copied (--force replaces the file)", rep.To)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return rep, fmt.Errorf("target: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return rep, fmt.Errorf("target: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".migrate-*")
	if err != nil {
		return rep, fmt.Errorf("target: %w", err)
	}
	tmp := f.Name()
	_ = f.Close()
	_ = os.Remove(tmp) // bbolt creates it
	defer os.Remove(tmp)
	dst, err := bolt.OpenFile(tmp, bolt.Options{})
	if err != nil {
		return rep, fmt.Errorf("target: %w", err)
	}
	rep, err = m.copyOrCheck(ctx, rep, src, dst)
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("target: %w", cerr)
	}
	if err != nil {
		return rep, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return rep, fmt.Errorf("target: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return rep, nil
}

// isMigrate reports whether args start with the migrate subcommand.
func isMigrate(args []string) bool {
	return len(args) > 0 && strings.TrimSpace(args[0]) == migrateCommand
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
