package etcdtest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/etcdproc"
)

// BinaryEnv names the environment variable that points at an etcd server
// binary to use instead of the repository's bin/etcd.
const BinaryEnv = etcdproc.BinaryEnv

// Binary returns the path of a real etcd server binary (v3.7.3): $GATEHOUSE_ETCD_BIN
// when set, else the repository's bin/etcd, which it builds from
// etcd.go.mod (as `make etcd` does) when it is missing.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := etcdproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Member is one etcd server process of a Cluster.
type Member = etcdproc.Member

// Cluster is a set of real etcd server processes on loopback, stopped when
// the test ends (see package etcdproc).
type Cluster struct {
	*etcdproc.Cluster
	t testing.TB
}

// StartCluster starts an n-member etcd cluster of real processes (the
// binary from Binary) on loopback ports, waits until it has a leader, and
// kills every member when t ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c, err := etcdproc.Start(etcdproc.Options{Binary: Binary(t), Dir: t.TempDir(), Members: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	cl := &Cluster{Cluster: c, t: t}
	cl.WaitHealthy(t, 60*time.Second)
	return cl
}

// Restart starts member i again on its data directory (after Kill).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.Cluster.Restart(i); err != nil {
		c.t.Fatal(err)
	}
}

// WaitHealthy waits until every running member answers a linearizable read.
func (c *Cluster) WaitHealthy(t testing.TB, within time.Duration) {
	t.Helper()
	if err := c.Cluster.WaitHealthy(within); err != nil {
		t.Fatal(err)
	}
}
