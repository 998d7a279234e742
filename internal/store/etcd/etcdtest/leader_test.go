package etcdtest_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// TestStartClusterWith_LeaderMovesOnKill: the members run with the
// options given (--unsafe-no-fsync on their command line), Leader finds
// the Raft leader, and after it is killed the member another one elects.
func TestStartClusterWith_LeaderMovesOnKill(t *testing.T) {
	cl := etcdtest.StartClusterWith(t, 3, etcdtest.ClusterOptions{NoFsync: true})
	for _, m := range cl.Members {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(m.Pid()) + "/cmdline")
		if err != nil {
			t.Skipf("no /proc: %v", err)
		}
		if !strings.Contains(string(cmdline), "--unsafe-no-fsync") {
			t.Errorf("member %s runs without --unsafe-no-fsync: %q", m.Name, cmdline)
		}
	}
	first := cl.Leader(t, 10*time.Second)
	cl.Kill(first)
	second := cl.Leader(t, 10*time.Second)
	if second == first {
		t.Fatalf("leader %d still reported after it was killed", first)
	}
}
