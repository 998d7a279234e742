package main

import (
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseConfig_Defaults: the defaults are three members and two
// replicas on fixed loopback ports beside make run's.
func TestParseConfig_Defaults(t *testing.T) {
	c, err := parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EtcdClients) != 3 || len(c.EtcdPeers) != 3 || len(c.Listen) != 2 || len(c.HTTP) != 2 || len(c.Metrics) != 2 {
		t.Errorf("defaults: %d/%d etcd addresses, %d/%d/%d replica addresses; want 3/3 and 2/2/2",
			len(c.EtcdClients), len(c.EtcdPeers), len(c.Listen), len(c.HTTP), len(c.Metrics))
	}
	if c.Dir != "data-cluster" {
		t.Errorf("dir %q, want data-cluster", c.Dir)
	}
	for _, a := range append(c.Listen, c.HTTP...) {
		if strings.HasSuffix(a, ":8470") || strings.HasSuffix(a, ":8471") {
			t.Errorf("replica address %s is make run's", a)
		}
	}
}

// TestParseConfig_Refusals: a command line that does not make a cluster
// is a usage error naming the flag, before anything runs.
func TestParseConfig_Refusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"peers short", []string{"--etcd-peer-addrs", "127.0.0.1:1"}, "etcd-peer-addrs: 1 addresses for 3 members"},
		{"no member", []string{"--etcd-client-addrs", "", "--etcd-peer-addrs", ""}, "at least one etcd member"},
		{"no replica", []string{"--listen", "", "--http-addrs", "", "--metrics-addrs", ""}, "at least one replica"},
		{"http short", []string{"--http-addrs", "127.0.0.1:7001"}, "http-addrs: 1 addresses for 2 replicas"},
		{"metrics long", []string{"--metrics-addrs", "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"}, "metrics-addrs: 3 addresses for 2 replicas"},
		{"not loopback", []string{"--listen", "10.0.0.1:7001,127.0.0.1:7002"}, `"10.0.0.1:7001" is not a loopback address`},
		{"any address", []string{"--listen", "0.0.0.0:7001,127.0.0.1:7002"}, `"0.0.0.0:7001" is not a loopback address`},
		{"port zero", []string{"--listen", "127.0.0.1:0,127.0.0.1:7002"}, "with a fixed port"},
		{"no port", []string{"--listen", "127.0.0.1,127.0.0.1:7002"}, "with a fixed port"},
		{"duplicate", []string{"--listen", "127.0.0.1:8480,127.0.0.1:7002"}, `listen: "127.0.0.1:8480" is also in etcd-client-addrs`},
		{"empty prefix", []string{"--etcd-prefix", ""}, "etcd-prefix must not be empty"},
		{"zero timeout", []string{"--stop-timeout", "0s"}, "must be positive"},
		{"stray argument", []string{"--dir", "x", "extra"}, `unexpected argument "extra": gatehoused flags go after --`},
		{"unknown flag", []string{"--no-such"}, "flag provided but not defined: -no-such"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, io.Discard)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseConfig(%q) = %v; want a usage error with %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestParseConfig_DaemonArgs: what follows -- goes to every gatehoused,
// after the flags the cluster sets, so that it wins.
func TestParseConfig_DaemonArgs(t *testing.T) {
	c, err := parseConfig([]string{"--dir", "x", "--", "--log-level", "debug"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	args := daemonArgs(c, 1)
	if got := strings.Join(args[len(args)-2:], " "); got != "--log-level debug" {
		t.Errorf("daemon args end with %q, want --log-level debug", got)
	}
	if !strings.Contains(strings.Join(args, " "), "--listen 127.0.0.1:8474 --http-addr 127.0.0.1:8475 --metrics-addr 127.0.0.1:9474") {
		t.Errorf("replica b's args %q do not hold its own addresses", args)
	}
}

// TestParseConfig_Help prints the usage and every flag.
func TestParseConfig_Help(t *testing.T) {
	var out strings.Builder
	if _, err := parseConfig([]string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage: gatehouse-cluster", "-etcd-peer-addrs", "-stop-timeout"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

// TestLoadState_KeepsTheMembers: the first run records the members and a
// token; once a member has data, a later run with the same peers reads the
// same token and one with other peers, or more members, is refused with
// what to pass instead.
func TestLoadState_KeepsTheMembers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	c, err := parseConfig([]string{"--dir", dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	first, err := loadState(c)
	if err != nil {
		t.Fatal(err)
	}
	if first.Token == "" || len(first.Members) != 3 {
		t.Fatalf("first state %+v", first)
	}
	// Until a member has data, other peers just replace the record.
	moved := c
	moved.EtcdPeers = []string{"127.0.0.1:9481", "127.0.0.1:9483", "127.0.0.1:9485"}
	if st, err := loadState(moved); err != nil || st.Members[0].Peer != "127.0.0.1:9481" {
		t.Fatalf("other peers before any member ran: %+v, %v; want them recorded", st, err)
	}
	first, err = loadState(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "etcd-m0", "member"), 0o755); err != nil {
		t.Fatal(err)
	}
	again, err := loadState(c)
	if err != nil || again.Token != first.Token {
		t.Fatalf("second load = %+v, %v; want token %q", again, err, first.Token)
	}
	other := c
	other.EtcdPeers = []string{"127.0.0.1:9481", "127.0.0.1:9483", "127.0.0.1:9485"}
	if _, err := loadState(other); err == nil || !strings.Contains(err.Error(), "--etcd-peer-addrs "+defaultEtcdPeers) {
		t.Errorf("other peers: %v; want a refusal naming %s", err, defaultEtcdPeers)
	}
	fewer := c
	fewer.EtcdPeers, fewer.EtcdClients = c.EtcdPeers[:1], c.EtcdClients[:1]
	if _, err := loadState(fewer); err == nil {
		t.Error("one member on a three-member cluster's directory: no refusal")
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(c); err == nil || !strings.Contains(err.Error(), "not a cluster state file") {
		t.Errorf("damaged state file: %v", err)
	}
}

// TestCheckPorts_NamesATakenAddress: a taken address fails the start
// before any process runs.
func TestCheckPorts_NamesATakenAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := Config{Listen: []string{l.Addr().String()}}
	if err := checkPorts(c); err == nil || !strings.Contains(err.Error(), l.Addr().String()+" is not free") {
		t.Errorf("checkPorts = %v; want %s named", err, l.Addr())
	}
}

// TestCheckBinaries_NamesTheMakeTarget: a missing binary says which make
// target builds it.
func TestCheckBinaries_NamesTheMakeTarget(t *testing.T) {
	dir := t.TempDir()
	err := checkBinaries(Config{EtcdBin: filepath.Join(dir, "etcd"), GatehousedBin: filepath.Join(dir, "gatehoused")})
	if err == nil || !strings.Contains(err.Error(), "make etcd builds it") || !strings.Contains(err.Error(), "make build builds it") {
		t.Errorf("checkBinaries = %v", err)
	}
}
