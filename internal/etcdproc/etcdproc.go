// Package etcdproc runs clusters of real etcd server processes (v3.7.3,
// the repository's bin/etcd) on loopback ports the kernel picks: for fault
// tests (through etcdtest.StartCluster) and for the load test's etcd mode,
// which runs outside of a test.
package etcdproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// BinaryEnv names the environment variable that points at an etcd server
// binary to use instead of the repository's bin/etcd.
const BinaryEnv = "GATEHOUSE_ETCD_BIN"

var buildOnce struct {
	sync.Mutex
	path string
}

// Binary returns the path of a real etcd server binary (v3.7.3): $GATEHOUSE_ETCD_BIN
// when set, else the repository's bin/etcd, which it builds from
// etcd.go.mod (as `make etcd` does) when it is missing.
func Binary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p, nil
	}
	buildOnce.Lock()
	defer buildOnce.Unlock()
	if buildOnce.path != "" {
		return buildOnce.path, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", fmt.Errorf("etcd binary: %w", err)
	}
	bin := filepath.Join(root, "bin", "etcd")
	if _, err := os.Stat(bin); err != nil {
		// Build to a private name and rename, so that test binaries of
		// several packages building at once never run a half-written file.
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			return "", err
		}
		tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
		cmd := exec.Command("go", "build", "-modfile=etcd.go.mod", "-o", tmp, "go.etcd.io/etcd/server/v3")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build etcd (make etcd): %w\n%s", err, out)
		}
		if err := os.Rename(tmp, bin); err != nil {
			return "", err
		}
	}
	buildOnce.path = bin
	return bin, nil
}

// repoRoot finds the directory holding etcd.go.mod above the working
// directory (a test's package directory, or the checkout make runs in).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "etcd.go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no etcd.go.mod above the working directory; set " + BinaryEnv)
		}
		dir = parent
	}
}

// Member is one etcd server process of a Cluster.
type Member struct {
	Name   string
	Client string // host:port of its client listener
	Peer   string // host:port of its peer listener
	Dir    string // its data directory
	Log    string // its log file

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the running process has been reaped.
	exited chan struct{}
}

// Pid returns the process id of the member's running process, 0 when it
// has none.
func (m *Member) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	select {
	case <-m.exited:
		return 0
	default:
	}
	return m.cmd.Process.Pid
}

// Cluster is a set of real etcd server processes on loopback.
type Cluster struct {
	Members []*Member
	bin     string
	initial string
}

// Options configure Start.
type Options struct {
	// Binary is the etcd server to run (see Binary).
	Binary string
	// Dir holds the members' data directories and log files.
	Dir string
	// Members is the number of members (default 3).
	Members int
}

// Start starts a cluster of real etcd processes on loopback ports. It
// does not wait for a leader (see WaitHealthy). On an error it has
// stopped every member it started. Stop ends them all.
func Start(o Options) (*Cluster, error) {
	n := o.Members
	if n <= 0 {
		n = 3
	}
	if o.Binary == "" || o.Dir == "" {
		return nil, errors.New("etcdproc: Binary and Dir are required")
	}
	c := &Cluster{bin: o.Binary}
	ports, err := FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var initial []string
	for i := range n {
		m := &Member{
			Name:   fmt.Sprintf("m%d", i),
			Client: ports[2*i],
			Peer:   ports[2*i+1],
			Dir:    filepath.Join(o.Dir, fmt.Sprintf("m%d", i)),
			Log:    filepath.Join(o.Dir, fmt.Sprintf("m%d.log", i)),
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"=http://"+m.Peer)
	}
	c.initial = strings.Join(initial, ",")
	for _, m := range c.Members {
		if err := c.launch(m, "new"); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// Stop kills every member and waits until each has exited.
func (c *Cluster) Stop() {
	for _, m := range c.Members {
		m.kill()
	}
}

// Endpoints returns every member's client address.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.Client
	}
	return eps
}

func (c *Cluster) launch(m *Member, state string) error {
	logf, err := os.OpenFile(m.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(c.bin,
		"--name", m.Name,
		"--data-dir", m.Dir,
		"--listen-client-urls", "http://"+m.Client,
		"--advertise-client-urls", "http://"+m.Client,
		"--listen-peer-urls", "http://"+m.Peer,
		"--initial-advertise-peer-urls", "http://"+m.Peer,
		"--initial-cluster", c.initial,
		"--initial-cluster-state", state,
		"--initial-cluster-token", "gatehouse-test",
		// Loopback: short heartbeats keep elections quick after a kill.
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--log-level", "warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A member must not outlive the process that started it.
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd member %s: %w", m.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	return nil
}

// Kill sends SIGKILL to member i and waits until it has exited.
func (c *Cluster) Kill(i int) { c.Members[i].kill() }

// Restart starts member i again on its data directory (after Kill).
func (c *Cluster) Restart(i int) error {
	m := c.Members[i]
	m.kill()
	return c.launch(m, "existing")
}

// Pause stops member i with SIGSTOP (it keeps its sockets but answers
// nothing); Resume continues it.
func (c *Cluster) Pause(i int)  { c.Members[i].signal(syscall.SIGSTOP) }
func (c *Cluster) Resume(i int) { c.Members[i].signal(syscall.SIGCONT) }

func (m *Member) signal(sig syscall.Signal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Signal(sig)
	}
}

func (m *Member) kill() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused member must be able to die
	_ = cmd.Process.Kill()
	<-exited
}

// WaitHealthy waits until every running member answers a linearizable
// read, and fails with the log of the first that does not within the
// time given.
func (c *Cluster) WaitHealthy(within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, m := range c.Members {
		m.mu.Lock()
		running := m.cmd != nil
		select {
		case <-m.exited:
			running = false
		default:
		}
		m.mu.Unlock()
		if !running {
			continue
		}
		for {
			err := ping(m.Client)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(m.Log)
				return fmt.Errorf("etcd member %s not healthy within %v: %v\n%s", m.Name, within, err, log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func ping(endpoint string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = cli.Get(ctx, "health-probe")
	return err
}

// FreePorts returns n distinct loopback host:port pairs the kernel had
// free.
func FreePorts(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}
