package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Default addresses: next to make run's daemon (gRPC 8470, HTTP 8471,
// metrics 9470), so that both can run at once. Replica i listens on
// 8472+2i (gRPC) and 8473+2i (HTTP), metrics on 9472+2i; etcd member i
// on 8480+2i (clients) and 8481+2i (peers).
const (
	defaultEtcdClients = "127.0.0.1:8480,127.0.0.1:8482,127.0.0.1:8484"
	defaultEtcdPeers   = "127.0.0.1:8481,127.0.0.1:8483,127.0.0.1:8485"
	defaultListen      = "127.0.0.1:8472,127.0.0.1:8474"
	defaultHTTP        = "127.0.0.1:8473,127.0.0.1:8475"
	defaultMetrics     = "127.0.0.1:9472,127.0.0.1:9474"

	// defaultStartTimeout bounds the start of the etcd cluster and, again,
	// of the replicas.
	defaultStartTimeout = 60 * time.Second
	// defaultStopTimeout is how long a process may take to stop after
	// SIGTERM before it is killed: above gatehoused's default
	// --shutdown-timeout (10s).
	defaultStopTimeout = 20 * time.Second

	// stateFile, in the data directory, records the etcd cluster the
	// directory holds (see state).
	stateFile = "cluster.json"
)

// Config is the command line of gatehouse-cluster.
type Config struct {
	// Dir holds every process's data and log.
	Dir string
	// EtcdBin, GatehousedBin are the binaries run; CLIBin and GrpcurlBin
	// are the clients the start-up banner shows (when they exist).
	EtcdBin, GatehousedBin, CLIBin, GrpcurlBin string
	// EtcdClients and EtcdPeers are the client and peer addresses of the
	// etcd members, one each per member.
	EtcdClients, EtcdPeers []string
	// Listen, HTTP and Metrics are the gRPC, HTTP/JSON and metrics
	// addresses of the replicas, one gRPC address per replica; HTTP and
	// Metrics are empty (none served) or one per replica.
	Listen, HTTP, Metrics []string
	// Prefix is the replicas' --etcd-prefix.
	Prefix string
	// StartTimeout bounds each start-up step; StopTimeout how long a
	// process may take to stop after SIGTERM before it is killed.
	StartTimeout, StopTimeout time.Duration
	// DaemonArgs are passed to every gatehoused after the flags the
	// cluster sets (a later flag wins).
	DaemonArgs []string
}

// usageError is a command line that does not parse or does not make a
// cluster: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string {
	return e.err.Error() + " (gatehouse-cluster --help lists the flags)"
}
func (e usageError) Unwrap() error { return e.err }

const usageText = `Usage: gatehouse-cluster [flags] [-- gatehoused flags]

gatehouse-cluster runs a Gatehouse cluster on this machine: an etcd cluster
of real etcd processes and gatehoused replicas on it (--store etcd, --demo),
on loopback. It prints how to call each replica and runs until SIGINT
(Ctrl-C) or SIGTERM, then stops the replicas and the etcd members. A
process that dies is reported; the rest keep running (kill an etcd member
to watch the cluster ride it out) until the last replica is gone. The exit
status is 0 only when every process ran until asked to stop and stopped.

Everything lives in --dir and is reused by the next run (the same etcd
cluster restarts with its data); remove the directory to start over.
Arguments after -- go to every gatehoused (e.g. -- --log-level debug).

Flags:
`

// parseConfig reads the command line.
func parseConfig(args []string, stdout io.Writer) (Config, error) {
	c := Config{}
	fs := flag.NewFlagSet("gatehouse-cluster", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Dir, "dir", "data-cluster", "`directory` of the cluster's data and logs, reused across runs")
	fs.StringVar(&c.EtcdBin, "etcd-bin", "bin/etcd", "etcd server `binary` (make etcd builds it)")
	fs.StringVar(&c.GatehousedBin, "gatehoused-bin", "bin/gatehoused", "gatehoused `binary` (make build builds it)")
	fs.StringVar(&c.CLIBin, "cli-bin", "bin/gatehouse", "admin CLI `binary` the banner's examples run")
	fs.StringVar(&c.GrpcurlBin, "grpcurl-bin", "bin/grpcurl", "grpcurl `binary` the banner's examples run")
	etcdClients := fs.String("etcd-client-addrs", defaultEtcdClients, "client `addresses` of the etcd members, one per member (comma-separated)")
	etcdPeers := fs.String("etcd-peer-addrs", defaultEtcdPeers, "peer `addresses` of the etcd members, one per member, fixed once the cluster exists")
	listen := fs.String("listen", defaultListen, "gRPC `addresses` of the gatehoused replicas, one per replica")
	httpAddrs := fs.String("http-addrs", defaultHTTP, "HTTP/JSON and console `addresses` of the replicas, one per replica (empty: none)")
	metrics := fs.String("metrics-addrs", defaultMetrics, "Prometheus metrics `addresses` of the replicas, one per replica (empty: none)")
	fs.StringVar(&c.Prefix, "etcd-prefix", "/gatehouse/", "the replicas' --etcd-prefix")
	fs.DurationVar(&c.StartTimeout, "start-timeout", defaultStartTimeout, "how long the etcd cluster, then the replicas, may take to start")
	fs.DurationVar(&c.StopTimeout, "stop-timeout", defaultStopTimeout, "how long a process may take to stop after SIGTERM before it is killed")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usageText)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return c, err
	}
	if err != nil {
		return c, usageError{err}
	}
	c.DaemonArgs = fs.Args()
	if len(c.DaemonArgs) > 0 && !slices.Contains(args, "--") {
		return c, usageError{fmt.Errorf("unexpected argument %q: gatehoused flags go after --", c.DaemonArgs[0])}
	}
	c.EtcdClients, c.EtcdPeers = splitList(*etcdClients), splitList(*etcdPeers)
	c.Listen, c.HTTP, c.Metrics = splitList(*listen), splitList(*httpAddrs), splitList(*metrics)
	if err := c.validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// validate checks that the addresses make a cluster: loopback host:port
// pairs, all distinct, as many of each kind as there are members or
// replicas.
func (c Config) validate() error {
	var errs []error
	switch {
	case len(c.EtcdClients) == 0:
		errs = append(errs, errors.New("etcd-client-addrs: at least one etcd member"))
	case len(c.EtcdPeers) != len(c.EtcdClients):
		errs = append(errs, fmt.Errorf("etcd-peer-addrs: %d addresses for %d members (etcd-client-addrs)", len(c.EtcdPeers), len(c.EtcdClients)))
	}
	if len(c.Listen) == 0 {
		errs = append(errs, errors.New("listen: at least one replica"))
	}
	for name, l := range map[string][]string{"http-addrs": c.HTTP, "metrics-addrs": c.Metrics} {
		if len(l) != 0 && len(l) != len(c.Listen) {
			errs = append(errs, fmt.Errorf("%s: %d addresses for %d replicas (listen); give one per replica or none", name, len(l), len(c.Listen)))
		}
	}
	seen := map[string]string{}
	for _, g := range []struct {
		flag  string
		addrs []string
	}{{"etcd-client-addrs", c.EtcdClients}, {"etcd-peer-addrs", c.EtcdPeers}, {"listen", c.Listen}, {"http-addrs", c.HTTP}, {"metrics-addrs", c.Metrics}} {
		for _, a := range g.addrs {
			host, port, err := net.SplitHostPort(a)
			if err != nil || port == "" || port == "0" {
				errs = append(errs, fmt.Errorf("%s: %q is not a host:port with a fixed port", g.flag, a))
				continue
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				errs = append(errs, fmt.Errorf("%s: %q is not a loopback address; the cluster runs without TLS or authentication, for this machine only", g.flag, a))
			}
			if prev, dup := seen[a]; dup {
				errs = append(errs, fmt.Errorf("%s: %q is also in %s", g.flag, a, prev))
			}
			seen[a] = g.flag
		}
	}
	if c.Prefix == "" {
		errs = append(errs, errors.New("etcd-prefix must not be empty"))
	}
	if c.StartTimeout <= 0 || c.StopTimeout <= 0 {
		errs = append(errs, errors.New("start-timeout and stop-timeout must be positive"))
	}
	return errors.Join(errs...)
}

// memberState is one etcd member as the data directory's cluster knows it.
type memberState struct {
	Name string `json:"name"`
	Peer string `json:"peer"`
}

// state is what the data directory's etcd cluster was created with: etcd
// keeps its members' peer addresses in its own data, so a later run must
// start the members with the same ones.
type state struct {
	Token   string        `json:"token"`
	Members []memberState `json:"members"`
}

// memberName is etcd member i's --name.
func memberName(i int) string { return fmt.Sprintf("m%d", i) }

// replicaName is replica i's name: a, b, c, …
func replicaName(i int) string {
	if i < 26 {
		return string(rune('a' + i))
	}
	return fmt.Sprintf("r%d", i)
}

// loadState returns the state of c.Dir, creating the directory and its
// state file on the first run. It fails when the directory's cluster has
// other members than c asks for.
func loadState(c Config) (state, error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return state{}, err
	}
	want := state{}
	for i, p := range c.EtcdPeers {
		want.Members = append(want.Members, memberState{Name: memberName(i), Peer: p})
	}
	path := filepath.Join(c.Dir, stateFile)
	b, err := os.ReadFile(path)
	if err == nil && !hasMemberData(c.Dir) {
		// No member ever wrote data here (a start that failed before
		// etcd ran): the members recorded bind nothing yet.
		err = os.ErrNotExist
	}
	if errors.Is(err, os.ErrNotExist) {
		// A random token keeps the members of two clusters from ever
		// taking each other's peers for their own.
		tok := make([]byte, 6)
		_, _ = rand.Read(tok)
		want.Token = "gatehouse-" + hex.EncodeToString(tok)
		b, err := json.MarshalIndent(want, "", "  ")
		if err != nil {
			return state{}, err
		}
		return want, os.WriteFile(path, append(b, '\n'), 0o644)
	}
	if err != nil {
		return state{}, err
	}
	var have state
	if err := json.Unmarshal(b, &have); err != nil || have.Token == "" {
		return state{}, fmt.Errorf("%s: not a cluster state file (%v); remove %s to start a new cluster", path, err, c.Dir)
	}
	if !slices.Equal(have.Members, want.Members) {
		return state{}, fmt.Errorf("the etcd cluster in %s has the members %s, and etcd keeps their peer addresses: pass --etcd-peer-addrs %s, or remove %s to start a new cluster",
			c.Dir, describe(have.Members), peers(have.Members), c.Dir)
	}
	return have, nil
}

// hasMemberData reports whether an etcd member's data directory exists in
// dir.
func hasMemberData(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "etcd-m*", "member"))
	return len(m) > 0
}

func describe(ms []memberState) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.Name+"="+m.Peer)
	}
	return strings.Join(parts, ",")
}

func peers(ms []memberState) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.Peer)
	}
	return strings.Join(parts, ",")
}

// checkPorts fails when one of c's addresses is taken (another cluster,
// or make run), before any process is started.
func checkPorts(c Config) error {
	var errs []error
	for _, a := range slices.Concat(c.EtcdClients, c.EtcdPeers, c.Listen, c.HTTP, c.Metrics) {
		l, err := net.Listen("tcp", a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s is not free (is a cluster already running?): %w", a, err))
			continue
		}
		_ = l.Close()
	}
	return errors.Join(errs...)
}

// checkBinaries fails, naming the make target that builds it, when a
// binary to run is missing.
func checkBinaries(c Config) error {
	var errs []error
	for _, b := range []struct{ path, target string }{{c.EtcdBin, "make etcd"}, {c.GatehousedBin, "make build"}} {
		fi, err := os.Stat(b.path)
		if err == nil && (fi.IsDir() || fi.Mode()&0o111 == 0) {
			err = errors.New("not an executable file")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (%s builds it)", b.path, err, b.target))
		}
	}
	return errors.Join(errs...)
}
