// Command gatehouse-cluster runs a Gatehouse cluster on one machine for
// development and demonstrations (make run-cluster): a three-member etcd
// cluster of real etcd processes and two gatehoused replicas on it
// (--store etcd, --demo), all on loopback, with their data in one
// directory reused across runs. It prints how to call each replica and
// stops every process it started on SIGINT or SIGTERM.
//
// A process that dies while the cluster runs is reported and the others
// keep running, so that a member or a replica can be killed to watch the
// cluster ride it out; when the last replica is gone, or a process dies
// during the start, the supervisor stops the rest and exits non-zero.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	err := run(os.Args[1:], sigs, os.Stdout, os.Stderr)
	var usage usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "gatehouse-cluster:", err)
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "gatehouse-cluster:", err)
	os.Exit(1)
}

// errInterrupted ends the start when a signal arrives.
var errInterrupted = errors.New("interrupted")

// logTail is how many lines of a dead process's log are shown.
const logTail = 15

// cluster is the running set of processes.
type cluster struct {
	cfg      Config
	state    state
	out      io.Writer // what the supervisor says
	members  []*proc
	replicas []*proc
	died     chan *proc
	// unexpected names the processes that ended without being asked to.
	unexpected []string
}

// run starts the cluster and supervises it until a signal arrives on sigs
// (a second one kills what is still stopping) or the last replica is
// gone. It returns nil only when every process ran until it was asked to
// stop and then stopped within --stop-timeout.
func run(args []string, sigs <-chan os.Signal, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stdout)
	if err != nil {
		return err
	}
	if err := checkBinaries(cfg); err != nil {
		return err
	}
	if err := checkPorts(cfg); err != nil {
		return err
	}
	st, err := loadState(cfg)
	if err != nil {
		return err
	}
	c := &cluster{cfg: cfg, state: st, out: stderr, died: make(chan *proc, len(cfg.EtcdClients)+len(cfg.Listen))}
	// force is closed by the second signal: stop waiting, kill.
	force := make(chan struct{})
	interrupted := make(chan struct{})
	go func() {
		<-sigs
		close(interrupted)
		<-sigs
		close(force)
	}()

	err = c.start(interrupted)
	if err == nil {
		fmt.Fprint(stdout, c.banner())
		err = c.supervise(interrupted)
	}
	if errors.Is(err, errInterrupted) {
		err = nil // a Ctrl-C during the start is a stop like any other
	}
	fmt.Fprintln(c.out, "gatehouse-cluster: stopping the replicas, then the etcd members")
	return errors.Join(err, c.stop(force))
}

// start starts the etcd members, waits until they answer, then starts the
// replicas and waits until they serve. It fails when a process dies, the
// start takes longer than --start-timeout, or interrupted closes.
func (c *cluster) start(interrupted <-chan struct{}) error {
	cfg := c.cfg
	var initial []string
	for _, m := range c.state.Members {
		initial = append(initial, m.Name+"=http://"+m.Peer)
	}
	for i := range cfg.EtcdClients {
		name := memberName(i)
		p, err := startProc("etcd "+name, filepath.Join(cfg.Dir, "etcd-"+name+".log"), cfg.EtcdBin,
			etcdArgs(cfg, c.state, i, strings.Join(initial, ",")), etcdEnv(), c.died)
		if err != nil {
			return err
		}
		c.members = append(c.members, p)
	}
	if err := c.await("the etcd cluster", interrupted, c.etcdReady); err != nil {
		return err
	}
	for i := range cfg.Listen {
		name := replicaName(i)
		p, err := startProc("gatehoused "+name, filepath.Join(cfg.Dir, "gatehoused-"+name+".log"), cfg.GatehousedBin,
			daemonArgs(cfg, i), os.Environ(), c.died)
		if err != nil {
			return err
		}
		c.replicas = append(c.replicas, p)
	}
	return c.await("the gatehoused replicas", interrupted, c.replicasReady)
}

// etcdArgs are the command line of etcd member i. On a data directory
// that holds a member already, etcd ignores the --initial-* flags and
// restarts that member.
func etcdArgs(cfg Config, st state, i int, initial string) []string {
	name := memberName(i)
	return []string{
		"--name", name,
		"--data-dir", filepath.Join(cfg.Dir, "etcd-"+name),
		"--listen-client-urls", "http://" + cfg.EtcdClients[i],
		"--advertise-client-urls", "http://" + cfg.EtcdClients[i],
		"--listen-peer-urls", "http://" + cfg.EtcdPeers[i],
		"--initial-advertise-peer-urls", "http://" + cfg.EtcdPeers[i],
		"--initial-cluster", initial,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", st.Token,
		// What docs/operations.md asks of a production cluster.
		"--auto-compaction-mode", "periodic",
		"--auto-compaction-retention", "1h",
		"--log-level", "warn",
	}
}

// etcdEnv is the environment without etcd's own ETCD_* variables: etcd
// refuses to start when one of them names a flag the command line sets.
func etcdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

// daemonArgs are the command line of replica i.
func daemonArgs(cfg Config, i int) []string {
	at := func(l []string) string {
		if len(l) == 0 {
			return "" // none served
		}
		return l[i]
	}
	args := []string{
		"--store", "etcd",
		"--etcd-endpoints", strings.Join(cfg.EtcdClients, ","),
		"--etcd-prefix", cfg.Prefix,
		"--listen", cfg.Listen[i],
		"--http-addr", at(cfg.HTTP),
		"--metrics-addr", at(cfg.Metrics),
		// The outbox of completed-session records (the leader writes it).
		"--data-dir", filepath.Join(cfg.Dir, "gatehoused-"+replicaName(i)),
		"--demo",
		"--log-format", "text",
	}
	return append(args, cfg.DaemonArgs...)
}

// await polls ready until it reports true; it fails when a process dies
// first, when --start-timeout passes or when interrupted closes.
func (c *cluster) await(what string, interrupted <-chan struct{}, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.StartTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case p := <-c.died:
			how, _ := p.outcome()
			c.unexpected = append(c.unexpected, p.name)
			return fmt.Errorf("%s %s while %s started; the end of %s:\n%s", p.name, how, what, p.log, p.tail(logTail))
		case <-interrupted:
			return errInterrupted
		case <-ctx.Done():
			return fmt.Errorf("%s did not start within %v (--start-timeout): %w; the logs are in %s", what, c.cfg.StartTimeout, err, c.cfg.Dir)
		case <-tick.C:
		}
	}
}

// etcdReady reports whether every member answers a linearizable read
// (which needs a leader and a quorum).
func (c *cluster) etcdReady(ctx context.Context) error {
	for i, ep := range c.cfg.EtcdClients {
		if err := pingEtcd(ctx, ep); err != nil {
			return fmt.Errorf("etcd %s: %w", memberName(i), err)
		}
	}
	return nil
}

func pingEtcd(ctx context.Context, endpoint string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = cli.Get(ctx, "gatehouse-cluster-probe")
	return err
}

// replicasReady reports whether every replica's health service answers
// SERVING.
func (c *cluster) replicasReady(ctx context.Context) error {
	for i, addr := range c.cfg.Listen {
		if err := pingReplica(ctx, addr); err != nil {
			return fmt.Errorf("gatehoused %s: %w", replicaName(i), err)
		}
	}
	return nil
}

func pingReplica(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health %v", resp.GetStatus())
	}
	return nil
}

// supervise waits for interrupted, reporting every process that dies
// meanwhile. It returns an error when the last replica is gone.
func (c *cluster) supervise(interrupted <-chan struct{}) error {
	for {
		select {
		case <-interrupted:
			return nil
		case p := <-c.died:
			how, _ := p.outcome()
			c.unexpected = append(c.unexpected, p.name)
			fmt.Fprintf(c.out, "gatehouse-cluster: %s (pid %d) %s; the end of %s:\n%s\n", p.name, p.pid(), how, p.log, p.tail(logTail))
			left := 0
			for _, r := range c.replicas {
				if r.running() {
					left++
				}
			}
			if left == 0 {
				return errors.New("every gatehoused replica has exited")
			}
			fmt.Fprintf(c.out, "gatehouse-cluster: the other processes keep running (%d of %d replicas); Ctrl-C stops them\n", left, len(c.replicas))
		}
	}
}

// stop stops the replicas, then the etcd members (a replica that stops
// gives up its leadership in etcd), and says which processes did not end
// as asked.
func (c *cluster) stop(force <-chan struct{}) error {
	var errs []error
	reported := map[string]bool{}
	for _, name := range c.unexpected {
		reported[name] = true
	}
	// The replicas stop together; the etcd members one after the other,
	// so that a leader that stops hands its leadership to a member that
	// still runs (at once) rather than wait for one that is stopping too.
	groups := [][]*proc{c.replicas}
	for _, m := range c.members {
		groups = append(groups, []*proc{m})
	}
	for _, group := range groups {
		killed := stopAll(group, c.cfg.StopTimeout, force)
		if len(killed) > 0 {
			errs = append(errs, fmt.Errorf("killed %s: not stopped within %v of SIGTERM (--stop-timeout)", strings.Join(killed, ", "), c.cfg.StopTimeout))
		}
		for _, name := range killed {
			reported[name] = true
		}
	}
	// Every process has been reaped: report those that ended on their
	// own since the last report, or failed as they stopped.
	for _, p := range append(slices.Clone(c.replicas), c.members...) {
		if how, expected := p.outcome(); !expected && !reported[p.name] {
			c.unexpected = append(c.unexpected, p.name)
			fmt.Fprintf(c.out, "gatehouse-cluster: %s (pid %d) %s; the end of %s:\n%s\n", p.name, p.pid(), how, p.log, p.tail(logTail))
		}
	}
	if len(c.unexpected) > 0 {
		errs = append(errs, fmt.Errorf("%s ended without being asked to", strings.Join(c.unexpected, ", ")))
	}
	if len(errs) == 0 {
		fmt.Fprintln(c.out, "gatehouse-cluster: every process stopped; the data stays in", c.cfg.Dir)
	}
	return errors.Join(errs...)
}
