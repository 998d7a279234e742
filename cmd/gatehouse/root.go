package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/buildinfo"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// outputFormats are the values of --output.
var outputFormats = []string{"table", "json", "yaml"}

// defaultAddr is where gatehoused listens by default.
const defaultAddr = "127.0.0.1:8470"

// Environment variables read when the matching flag is not given.
const (
	envAddr      = "GATEHOUSE_ADDR"
	envToken     = "GATEHOUSE_TOKEN"
	envTokenFile = "GATEHOUSE_TOKEN_FILE"
	envOutput    = "GATEHOUSE_OUTPUT"
	envAccount   = "GATEHOUSE_ACCOUNT"
)

// app holds the global options and the lazily opened connection shared by
// every command of one invocation.
type app struct {
	stdin     io.Reader
	out       io.Writer
	errOut    io.Writer
	lookupEnv func(string) (string, bool)

	addr          string
	token         string
	tokenFile     string
	timeout       time.Duration
	useTLS        bool
	tlsCA         string
	tlsServerName string
	tlsCert       string
	tlsKey        string
	output        string

	choices map[*pflag.Flag]*choices // the choice flags of the command tree

	bearer     string // resolved in the root's PersistentPreRunE
	bearerFrom string // where the bearer came from, for error hints
	conn       *grpc.ClientConn
	c          *clients
}

// clients are the three API clients over one connection.
type clients struct {
	conn     *grpc.ClientConn
	admin    gatehousev1.AdminServiceClient
	sessions gatehousev1.SessionServiceClient
	decide   gatehousev1.DecisionServiceClient
}

func (a *app) close() {
	if a.conn != nil {
		_ = a.conn.Close()
	}
}

func (a *app) env(name string) string {
	if a.lookupEnv == nil {
		return ""
	}
	v, _ := a.lookupEnv(name)
	return v
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "gatehouse",
		Short: "Administer a Gatehouse policy-decision service",
		Long: `gatehouse is the admin CLI of Gatehouse. It talks to gatehoused over the
public gRPC API: manage accounts and everything they own, start and end
sessions, ask decisions, export and import accounts, back up the store.

Commands are "gatehouse <resource> <verb>". Account-owned resources take
--account (or GATEHOUSE_ACCOUNT).`,
		Version:       buildinfo.Display(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.resolveGlobals(cmd)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", defaultAddr, "gatehoused `host:port` (env "+envAddr+")")
	pf.StringVar(&a.token, "token", "", "bearer token sent as \"authorization: Bearer <token>\" (env "+envToken+")")
	pf.StringVar(&a.tokenFile, "token-file", "", "read the bearer token from `file` (env "+envTokenFile+")")
	pf.DurationVar(&a.timeout, "timeout", 30*time.Second, "deadline of each call (of the whole stream for backup)")
	pf.BoolVar(&a.useTLS, "tls", false, "connect with TLS (to a gatehoused started with --tls-cert/--tls-key)")
	pf.StringVar(&a.tlsCA, "tls-ca", "", "PEM `file` of the CA that signed the server certificate (implies --tls)")
	pf.StringVar(&a.tlsServerName, "tls-server-name", "", "server name to verify the certificate against (implies --tls)")
	pf.StringVar(&a.tlsCert, "tls-cert", "", "client certificate PEM `file` for mutual TLS (implies --tls; needs --tls-key)")
	pf.StringVar(&a.tlsKey, "tls-key", "", "client key PEM `file` for mutual TLS")
	pf.StringVarP(&a.output, "output", "o", "table", "output `format`: table, json or yaml (env "+envOutput+")")
	a.choiceFlag(root, "output", outputFormats, nil)

	root.AddGroup(&cobra.Group{ID: "admin", Title: "Account resources:"},
		&cobra.Group{ID: "sessions", Title: "Sessions and decisions:"},
		&cobra.Group{ID: "store", Title: "Store and callers:"})
	for _, f := range families() {
		root.AddCommand(withGroup("admin", familyCmd(a, f)))
	}
	root.AddCommand(
		withGroup("admin", settingsCmd(a)),
		withGroup("admin", customizationCmd(a)),
		withGroup("admin", cobrowseURLCmd(a)),
		withGroup("sessions", sessionsCmd(a)),
		withGroup("sessions", checkCmd(a)),
		withGroup("sessions", testCmd(a)),
		withGroup("store", exportCmd(a)),
		withGroup("store", importCmd(a)),
		withGroup("store", diffCmd(a)),
		withGroup("store", applyCmd(a)),
		withGroup("store", schemaCmd(a)),
		withGroup("store", backupCmd(a)),
		withGroup("store", tokensCmd(a)),
		withGroup("store", auditCmd(a)),
		withGroup("store", notificationsCmd(a)),
		withGroup("store", healthCmd(a)),
	)
	root.SetHelpCommandGroupID("store")
	root.SetCompletionCommandGroupID("store")
	// The completion command joins the tree now (not at Execute) so that
	// it too refuses an unknown shell; it takes its output stream now.
	if a.out != nil {
		root.SetOut(a.out)
	}
	if a.errOut != nil {
		root.SetErr(a.errOut)
	}
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	rejectUnknownSubcommands(root)
	rejectUnknownHelpTopics(root)
	return root
}

// rejectUnknownHelpTopics makes "gatehouse help NOPE" a usage error with
// a suggestion, as "gatehouse NOPE" is.
func rejectUnknownHelpTopics(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "help" {
			continue
		}
		show := c.Run
		c.Run = nil
		c.RunE = func(cmd *cobra.Command, argv []string) error {
			if found, rest, err := root.Find(argv); len(argv) > 0 && (err != nil || found == root || len(rest) > 0) {
				names := availableNames(root)
				return usageError{fmt.Errorf("unknown help topic %q (commands: %s)%s", strings.Join(argv, " "),
					strings.Join(names, ", "), didYouMean(argv[len(argv)-1], names))}
			}
			show(cmd, argv)
			return nil
		}
	}
}

func withGroup(id string, c *cobra.Command) *cobra.Command {
	c.GroupID = id
	return c
}

// resolveGlobals fills unset global flags from the environment and checks
// them.
func (a *app) resolveGlobals(cmd *cobra.Command) error {
	fs := cmd.Flags()
	if !fs.Changed("addr") {
		if v := a.env(envAddr); v != "" {
			a.addr = v
		}
	}
	if err := a.checkChoices(cmd); err != nil {
		return err
	}
	if !fs.Changed("output") {
		if v := a.env(envOutput); v != "" {
			out, err := (&choices{values: outputFormats}).resolve("output", v)
			if err != nil {
				return usageError{fmt.Errorf("%s: %w", envOutput, err)}
			}
			a.output = out
		}
	}
	switch {
	case fs.Changed("token") && fs.Changed("token-file"):
		return usageError{errors.New("pass --token or --token-file, not both")}
	case fs.Changed("token"):
		a.bearer, a.bearerFrom = a.token, "--token"
	case fs.Changed("token-file"):
		a.bearerFrom = "--token-file " + a.tokenFile
		return a.readTokenFile(a.tokenFile)
	case a.env(envToken) != "":
		a.bearer, a.bearerFrom = a.env(envToken), envToken
	case a.env(envTokenFile) != "":
		a.bearerFrom = envTokenFile + "=" + a.env(envTokenFile)
		return a.readTokenFile(a.env(envTokenFile))
	}
	a.bearer = strings.TrimSpace(a.bearer)
	return nil
}

func (a *app) readTokenFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	a.bearer = strings.TrimSpace(string(b))
	if a.bearer == "" {
		return fmt.Errorf("token file %s is empty", path)
	}
	return nil
}

// client dials gatehoused on first use. The connection is lazy: a server
// that is not there shows up as UNAVAILABLE on the first call.
func (a *app) client() (*clients, error) {
	if a.c != nil {
		return a.c, nil
	}
	creds := insecure.NewCredentials()
	if a.useTLS || a.tlsCA != "" || a.tlsServerName != "" || a.tlsCert != "" {
		cfg, err := a.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(a.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", a.addr, err)
	}
	a.conn = conn
	a.c = &clients{
		conn:     conn,
		admin:    gatehousev1.NewAdminServiceClient(conn),
		sessions: gatehousev1.NewSessionServiceClient(conn),
		decide:   gatehousev1.NewDecisionServiceClient(conn),
	}
	return a.c, nil
}

func (a *app) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: a.tlsServerName}
	if a.tlsCA != "" {
		pem, err := os.ReadFile(a.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate found", a.tlsCA)
		}
		cfg.RootCAs = pool
	}
	if (a.tlsCert == "") != (a.tlsKey == "") {
		return nil, usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if a.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(a.tlsCert, a.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// call returns the context of one call: the command's context with the
// --timeout deadline and the bearer token.
func (a *app) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.bearer != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+a.bearer)
	}
	if a.timeout > 0 {
		return context.WithTimeout(ctx, a.timeout)
	}
	return context.WithCancel(ctx)
}

// accountCall prepares a call about cmd's account: the account, the
// clients, and the call's context with its cancel function (nil on error).
func (a *app) accountCall(cmd *cobra.Command) (string, *clients, context.Context, context.CancelFunc, error) {
	acct, err := a.accountOf(cmd)
	if err != nil {
		return "", nil, nil, nil, err
	}
	c, err := a.client()
	if err != nil {
		return "", nil, nil, nil, err
	}
	ctx, cancel := a.call(cmd.Context())
	return acct, c, ctx, cancel, nil
}

// showCall makes one call in cmd's context and shows the message it
// returns, field by field (or as json/yaml).
func (a *app) showCall(cmd *cobra.Command, call func(context.Context, *clients) (proto.Message, error)) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := a.call(cmd.Context())
	defer cancel()
	m, err := call(ctx, c)
	if err != nil {
		return err
	}
	return a.emit(m, func(w io.Writer) error { return detailTable(w, m) })
}

// accountOf returns the --account of cmd, else GATEHOUSE_ACCOUNT.
func (a *app) accountOf(cmd *cobra.Command) (string, error) {
	acct, _ := cmd.Flags().GetString("account")
	if acct == "" {
		acct = a.env(envAccount)
	}
	if acct == "" {
		return "", usageError{fmt.Errorf("%s needs --account (or %s)", cmd.CommandPath(), envAccount)}
	}
	return acct, nil
}

// addAccountFlag adds --account/-a to c and its subcommands.
func addAccountFlag(a *app, c *cobra.Command, persistent bool) {
	fs := c.Flags()
	if persistent {
		fs = c.PersistentFlags()
	}
	fs.StringP("account", "a", "", "account `id` (env "+envAccount+")")
	_ = c.RegisterFlagCompletionFunc("account", a.completeAccounts)
}

// confirm asks question on the terminal and returns nil on "y" or "yes".
// When stdin is not a terminal there is nobody to ask: it is a usage error
// that names --yes.
func (a *app) confirm(question string) error {
	f, ok := a.stdin.(*os.File)
	if !ok || !isTerminal(f) {
		return usageError{fmt.Errorf("%s Not asked: stdin is not a terminal; pass --yes to confirm", question)}
	}
	fmt.Fprintf(a.errOut, "%s [y/N] ", question)
	line, _ := bufio.NewReader(f).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed; nothing deleted")
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// silentError fails a command (exit 1) that has already said why on
// stdout, such as a health probe that printed NOT_SERVING.
type silentError struct{ err error }

func (e silentError) Error() string { return e.err.Error() }
func (e silentError) Unwrap() error { return e.err }

// usageError marks bad flags or arguments (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command") ||
		strings.HasPrefix(err.Error(), "required flag")
}

// args wraps a cobra argument check so that its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}
