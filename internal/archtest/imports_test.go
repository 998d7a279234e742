package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/gatehouse-dev/gatehouse"

// imports returns, for every package of the module, the packages its
// non-test files import directly (go list).
func imports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			m[strings.TrimPrefix(f[0], module+"/")] = f[1:]
		}
	}
	if len(m) < 10 {
		t.Fatalf("go list found %d packages: %s", len(m), out)
	}
	return m
}

// under reports whether pkg (relative to the module) is dir or below it.
func under(pkg string, dirs ...string) bool {
	for _, d := range dirs {
		if pkg == d || strings.HasPrefix(pkg, d+"/") {
			return true
		}
	}
	return false
}

// grpcSpeakers may choose gRPC status codes: the gRPC edge, which maps
// errs to statuses in one file, the generated code and the programs and
// packages that are gRPC clients (the etcd store driver is one of etcd: it
// reads the codes of etcd's answers and returns store errors).
var grpcSpeakers = []string{"gen", "client", "cmd/gatehouse", "cmd/gatehouse-loadtest", "internal/loadgen", "internal/server", "internal/gateway", "internal/store/etcd"}

// TestImports_StatusCodesOnlyAtTheEdge: outside the gRPC edge, code reports
// errors as errs kinds; no package there imports grpc/codes or grpc/status.
func TestImports_StatusCodesOnlyAtTheEdge(t *testing.T) {
	for pkg, imps := range imports(t) {
		if under(pkg, grpcSpeakers...) {
			continue
		}
		for _, imp := range imps {
			if imp == "google.golang.org/grpc/codes" || imp == "google.golang.org/grpc/status" {
				t.Errorf("%s imports %s: return an errs kind and let the edge (internal/server/status.go) choose the code", pkg, imp)
			}
		}
	}
}

type rule struct {
	pkgs []string
	may  []string
	// noGRPC: the package imports nothing of gRPC or protobuf.
	noGRPC bool
}

// rules says, per package (and the packages below it), which of the
// module's packages it may import; a package of the module that no rule
// covers fails the test, so a new one gets a rule.
var rules = []rule{
	// The pure core: no I/O, no transport.
	{pkgs: []string{"internal/urlmatch", "internal/selector", "internal/hours", "internal/errs", "internal/buildinfo", "internal/auth"}, noGRPC: true},
	{pkgs: []string{"internal/policy"}, may: []string{"internal/auth", "internal/selector", "internal/urlmatch", "internal/hours"}, noGRPC: true},
	// Storage and what follows it. The etcd driver talks gRPC to etcd
	// (etcd's client); it imports nothing of ours above the store.
	// Real etcd processes for tests and the load test; the test helpers
	// of the etcd driver run them.
	{pkgs: []string{"internal/etcdproc"}},
	{pkgs: []string{"internal/store/etcd/etcdtest"}, may: []string{"internal/etcdproc"}},
	{pkgs: []string{"internal/store/etcd"}, may: []string{"internal/auth", "internal/policy", "internal/store", "internal/leader"}},
	// Leader election (on etcd's client) for the work that runs once; its
	// terms fence the store's writes (store.Fence).
	{pkgs: []string{"internal/leader"}, may: []string{"internal/store"}},
	{pkgs: []string{"internal/store"}, may: []string{"internal/auth", "internal/policy", "internal/store"}, noGRPC: true},
	{pkgs: []string{"internal/replica"}, may: []string{"internal/auth", "internal/policy", "internal/store"}, noGRPC: true},
	{pkgs: []string{"internal/notify"}, may: []string{"internal/policy", "internal/store"}, noGRPC: true},
	// The domain service layer: write rules over store transactions,
	// errors as errs kinds, no transport.
	{pkgs: []string{"internal/service"}, may: []string{"internal/auth", "internal/errs", "internal/policy", "internal/store", "internal/notify", "internal/hours", "internal/urlmatch"}, noGRPC: true},
	// Observability beside the services: metrics, decision log, audit,
	// tracing helpers; no transport.
	{pkgs: []string{"internal/observe"}, may: []string{"internal/auth", "internal/errs", "internal/policy", "internal/store", "internal/replica"}, noGRPC: true},
	// Account documents (export, plan, apply) over the write rules the
	// edge hands them; documents are API messages.
	{pkgs: []string{"internal/accountdoc"}, may: []string{"gen", "internal/store"}},
	// The gRPC edge.
	{pkgs: []string{"internal/server"}, may: []string{"gen", "internal"}},
	// The HTTP edge: grpc-gateway handlers that call the gRPC edge over an
	// in-process connection; and the console's static files and guards.
	{pkgs: []string{"internal/gateway"}, may: []string{"gen", "internal/server", "schema"}},
	{pkgs: []string{"internal/console"}, noGRPC: true},
	// The account document's JSON Schema, embedded.
	{pkgs: []string{"schema"}, noGRPC: true},
	// Decision tests: offline they run the server itself in memory.
	{pkgs: []string{"policytest"}, may: []string{"gen", "internal/server", "internal/replica", "internal/store"}},
	// Generated code, clients, programs and their helpers.
	{pkgs: []string{"gen"}, may: []string{"gen"}},
	// The Go client decides locally with the pure core.
	{pkgs: []string{"client"}, may: []string{"gen", "client", "internal/policy", "internal/selector", "internal/urlmatch", "internal/hours", "internal/auth"}},
	{pkgs: []string{"cmd", "internal/config", "internal/demo", "internal/loadgen", "internal/tracing", "internal/tlsconfig", "internal/archtest", "examples"}, may: []string{"gen", "client", "internal", "cmd", "examples", "policytest", "schema"}},
}

// TestImports_Layers pins which packages may import which (see
// docs/architecture.md): the core imports nothing with I/O or transport,
// storage knows nothing of gRPC, only the programs import the edge.
func TestImports_Layers(t *testing.T) {
	for pkg, imps := range imports(t) {
		i := slices.IndexFunc(rules, func(r rule) bool { return under(pkg, r.pkgs...) })
		if i < 0 {
			t.Errorf("%s: no import rule; add it to rules (and to docs/architecture.md)", pkg)
			continue
		}
		r := rules[i]
		for _, imp := range imps {
			if r.noGRPC && (strings.HasPrefix(imp, "google.golang.org/grpc") || strings.HasPrefix(imp, "google.golang.org/protobuf") || strings.HasPrefix(imp, "google.golang.org/genproto")) {
				t.Errorf("%s imports %s; it must not depend on gRPC or protobuf", pkg, imp)
			}
			rel, ours := strings.CutPrefix(imp, module+"/")
			if !ours || rel == pkg {
				continue
			}
			if !under(rel, r.may...) {
				t.Errorf("%s imports %s; it may import only %v", pkg, rel, r.may)
			}
		}
	}
}

// edgeUsers may import the gRPC edge: the programs that serve it, and
// the HTTP gateway in front of it, and policytest, whose offline runs serve the account under test in memory
// with the server's own code.
var edgeUsers = []string{"cmd/gatehoused", "cmd/gatehouse-loadtest", "policytest", "internal/gateway"}

// TestImports_OnlyProgramsImportTheEdge: nothing below the edge depends
// on it.
func TestImports_OnlyProgramsImportTheEdge(t *testing.T) {
	for pkg, imps := range imports(t) {
		if under(pkg, edgeUsers...) || under(pkg, "internal/server") {
			continue
		}
		for _, imp := range imps {
			if rel, _ := strings.CutPrefix(imp, module+"/"); under(rel, "internal/server") {
				t.Errorf("%s imports the gRPC edge %s", pkg, rel)
			}
		}
	}
}
