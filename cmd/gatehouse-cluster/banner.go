package main

import (
	"fmt"
	"os"
	"strings"
)

// demoAccount is the account gatehoused --demo seeds (internal/demo).
const demoAccount = "demo"

// banner says what runs where and how to call it: the lines that start
// with the admin CLI's path run as they are, with <…> replaced.
func (c *cluster) banner() string {
	cfg := c.cfg
	var b strings.Builder
	fmt.Fprintf(&b, "\nGatehouse cluster in %s: %d etcd members, %d gatehoused replicas (--store etcd --etcd-prefix %s), demo account %q.\n\n",
		cfg.Dir, len(c.members), len(c.replicas), cfg.Prefix, demoAccount)
	b.WriteString("etcd members:\n")
	for i, p := range c.members {
		fmt.Fprintf(&b, "  %-3s client %s  peer %s  pid %d  health http://%s/health  metrics http://%s/metrics  log %s\n",
			memberName(i), cfg.EtcdClients[i], cfg.EtcdPeers[i], p.pid(), cfg.EtcdClients[i], cfg.EtcdClients[i], p.log)
	}
	b.WriteString("\ngatehoused replicas:\n")
	for i, p := range c.replicas {
		fmt.Fprintf(&b, "  %-3s gRPC %s", replicaName(i), cfg.Listen[i])
		if len(cfg.HTTP) > 0 {
			fmt.Fprintf(&b, "  HTTP/JSON and console http://%s/", cfg.HTTP[i])
		}
		if len(cfg.Metrics) > 0 {
			fmt.Fprintf(&b, "  metrics http://%s/metrics", cfg.Metrics[i])
		}
		fmt.Fprintf(&b, "  pid %d  log %s\n", p.pid(), p.log)
	}
	a, z := cfg.Listen[0], cfg.Listen[len(cfg.Listen)-1]
	cli, grpcurl := executable(cfg.CLIBin), executable(cfg.GrpcurlBin)
	if cli || grpcurl {
		b.WriteString("\nTry, in another terminal:\n\n")
	}
	if cli {
		g := cfg.CLIBin
		for _, addr := range cfg.Listen {
			fmt.Fprintf(&b, "  %s --addr %s health\n", g, addr)
		}
		fmt.Fprintf(&b, "  %s --addr %s settings get -a %s\n", g, z, demoAccount)
		b.WriteString("  # A session and a write on the first replica; each answer has its revision ...\n")
		fmt.Fprintf(&b, "  %s --addr %s sessions start -a %s --kind live_guide --rep alice --customer cust-1\n", g, a, demoAccount)
		fmt.Fprintf(&b, "  %s --addr %s settings update -a %s --set agent_click_restricted=true\n", g, a, demoAccount)
		b.WriteString("  # ... and a decision on the last one at (or after) the write's revision: denied.\n")
		fmt.Fprintf(&b, "  %s --addr %s check --session <session id> --role agent --actor alice --feature click --url https://www.example.com/ --min-revision <revision>\n\n", g, z)
	}
	if grpcurl {
		g := cfg.GrpcurlBin + " -plaintext"
		fmt.Fprintf(&b, "  %s %s list\n", g, a)
		fmt.Fprintf(&b, "  %s -d '{\"account_id\":\"%s\"}' %s gatehouse.v1.AdminService/GetLiveGuideSettings\n", g, demoAccount, z)
		fmt.Fprintf(&b, "  %s -d '{\"session_id\":\"<session id>\",\"actor\":{\"role\":\"ROLE_AGENT\",\"id\":\"alice\"},\"feature\":\"FEATURE_CLICK\",\"url\":\"https://www.example.com/\",\"min_revision\":\"<revision>\"}' %s gatehouse.v1.DecisionService/CheckFeature\n\n", g, z)
	}
	switch {
	case !cli && !grpcurl:
		b.WriteString("\nNo client found: make build builds the admin CLI bin/gatehouse, make bin/grpcurl builds grpcurl.\n")
	case !cli:
		b.WriteString("The admin CLI: make build builds bin/gatehouse.\n")
	case !grpcurl:
		b.WriteString("grpcurl: make bin/grpcurl builds it (the replicas have reflection).\n")
	}
	if len(cfg.HTTP) > 0 {
		b.WriteString("Over HTTP/JSON (each replica's console is at its HTTP address):\n")
		fmt.Fprintf(&b, "  curl -s http://%s/v1/accounts/%s/liveGuideSettings\n", cfg.HTTP[len(cfg.HTTP)-1], demoAccount)
	}
	if len(cfg.Metrics) > 0 {
		b.WriteString("The replica that runs the session sweeper and the notification sender has gatehouse_leader 1:\n")
		for _, m := range cfg.Metrics {
			fmt.Fprintf(&b, "  curl -s http://%s/metrics | grep '^gatehouse_leader '\n", m)
		}
	}
	if len(c.members) > 1 {
		fmt.Fprintf(&b, "\nKill a member (kill -9 %d) or a replica: the others keep serving and writing, and this reports it.\n", c.members[len(c.members)-1].pid())
	}
	fmt.Fprintf(&b, "Ctrl-C stops every process (the replicas, then etcd); the data stays in %s for the next run (remove it to start over).\n\n", cfg.Dir)
	return b.String()
}

// executable reports whether path is a file that can be run.
func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
