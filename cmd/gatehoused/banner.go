package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/demo"
)

// tools are the clients the start-up banner can point at: a path to run
// each by, or "" when neither bin/ nor the PATH has it.
type tools struct{ grpcurl, gatehouse string }

// findTools looks for grpcurl and the admin CLI in dir/bin (where make
// puts them), then on the PATH.
func findTools(dir string) tools {
	find := func(name string) string {
		rel := filepath.Join("bin", name)
		if fi, err := os.Stat(filepath.Join(dir, rel)); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return rel
		}
		if _, err := exec.LookPath(name); err == nil {
			return name
		}
		return ""
	}
	return tools{grpcurl: find("grpcurl"), gatehouse: find("gatehouse")}
}

// dialAddr is an address a client on this host can dial for the listen
// address addr: an unspecified host (0.0.0.0, ::) becomes loopback.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if ip != nil && ip.To4() == nil {
			return net.JoinHostPort("::1", port)
		}
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// demoBanner is the start-up help of --demo: calls against the demo data
// that work with the configuration running (its address, TLS and
// authentication) and the clients at hand.
func demoBanner(cfg config.Config, listenAddr string, t tools) string {
	addr := dialAddr(listenAddr)
	var b strings.Builder
	fmt.Fprintf(&b, "\nGatehouse is serving on %s with the demo account %q (representative \"alice\").\n", listenAddr, demo.AccountID)

	// What a client needs: transport and credentials.
	var grpcurlArgs, cliArgs []string
	if cfg.TLSCert != "" {
		grpcurlArgs = append(grpcurlArgs, "-cacert", cfg.TLSCert)
		cliArgs = append(cliArgs, "--tls-ca", cfg.TLSCert)
		if cfg.TLSClientCA != "" {
			grpcurlArgs = append(grpcurlArgs, "-cert", "CLIENT.crt", "-key", "CLIENT.key")
			cliArgs = append(cliArgs, "--tls-cert", "CLIENT.crt", "--tls-key", "CLIENT.key")
		}
	} else {
		grpcurlArgs = append(grpcurlArgs, "-plaintext")
	}
	var notes []string
	if cfg.Auth == "token" {
		if cfg.BootstrapTokenFile != "" {
			grpcurlArgs = append(grpcurlArgs, "-H", `"authorization: Bearer $(cat `+shellQuote(cfg.BootstrapTokenFile)+`)"`)
			cliArgs = append(cliArgs, "--token-file", shellQuote(cfg.BootstrapTokenFile))
		} else {
			grpcurlArgs = append(grpcurlArgs, "-H", `"authorization: Bearer $TOKEN"`)
			cliArgs = append(cliArgs, "--token", `"$TOKEN"`)
			notes = append(notes, "Callers need a token (--auth token): set TOKEN to an operator bearer (gh_…).")
		}
	}
	if cfg.TLSClientCA != "" {
		notes = append(notes, "Mutual TLS: CLIENT.crt and CLIENT.key are a client certificate and key signed by "+cfg.TLSClientCA+".")
	}

	if t.gatehouse != "" || t.grpcurl != "" {
		b.WriteString("Try, in another terminal:\n\n")
	}
	if t.gatehouse != "" {
		cli := strings.Join(append([]string{t.gatehouse, "--addr", addr}, cliArgs...), " ")
		fmt.Fprintf(&b, "  %s settings get -a %s\n", cli, demo.AccountID)
		fmt.Fprintf(&b, "  %s sessions start -a %s --kind live_guide --rep alice --customer cust-1\n", cli, demo.AccountID)
		fmt.Fprintf(&b, "  %s health\n\n", cli)
	}
	if t.grpcurl != "" {
		g := strings.Join(append([]string{t.grpcurl}, grpcurlArgs...), " ")
		fmt.Fprintf(&b, "  %s %s list\n", g, addr)
		fmt.Fprintf(&b, "  %s -d '{\"account_id\":\"%s\"}' %s gatehouse.v1.AdminService/GetLiveGuideSettings\n", g, demo.AccountID, addr)
		fmt.Fprintf(&b, "  %s -d '{\"account_id\":\"%s\",\"kind\":\"SESSION_KIND_LIVE_GUIDE\",\"representative_id\":\"alice\",\"customer_id\":\"cust-1\"}' %s gatehouse.v1.SessionService/StartSession\n", g, demo.AccountID, addr)
		fmt.Fprintf(&b, "  %s -d '{\"session_id\":\"<id from StartSession>\",\"actor\":{\"role\":\"ROLE_AGENT\",\"id\":\"alice\"},\"feature\":\"FEATURE_CLICK\",\"url\":\"https://www.example.com/\"}' %s gatehouse.v1.DecisionService/CheckFeature\n\n", g, addr)
	}
	switch {
	case t.gatehouse == "" && t.grpcurl == "":
		b.WriteString("No client found in bin/ or on the PATH: make build builds the admin CLI bin/gatehouse,\nmake bin/grpcurl builds grpcurl.\n")
	case t.gatehouse == "":
		b.WriteString("The admin CLI: make build builds bin/gatehouse.\n")
	case t.grpcurl == "":
		b.WriteString("grpcurl: make bin/grpcurl builds it (the server has reflection).\n")
	}
	for _, n := range notes {
		b.WriteString(n + "\n")
	}
	b.WriteString("(docs/cli.md has every command; README.md has a full walk-through.)\n\n")
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printDemoHelp writes the banner.
func printDemoHelp(w io.Writer, banner string) { _, _ = io.WriteString(w, banner) }
