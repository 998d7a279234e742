package main

import (
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// walk calls fn for every available command below root.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			fn(sub)
			walk(sub, fn)
		}
	}
}

// pathArgs is the command path of c without the root, as arguments.
func pathArgs(c *cobra.Command) []string {
	return strings.Fields(c.CommandPath())[1:]
}

// positionals fills the required positional arguments of c's Use line.
func positionals(c *cobra.Command) []string {
	var out []string
	fields := strings.Fields(c.Use)[1:]
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		switch {
		case strings.HasPrefix(f, "-"):
			i++ // the flag's value
		case strings.ContainsAny(f, "[]"):
		case f == strings.ToUpper(f):
			out = append(out, "x")
		}
	}
	return out
}

// Every command that groups others refuses an unknown subcommand with exit
// 2 and suggests the nearest one; the root does too.
func TestUsage_UnknownSubcommand(t *testing.T) {
	t.Parallel()
	root := newRootCmd(&app{})
	groups := []*cobra.Command{root}
	walk(root, func(c *cobra.Command) {
		if c.HasAvailableSubCommands() {
			groups = append(groups, c)
		}
	})
	if len(groups) < 15 || !slices.ContainsFunc(groups, func(c *cobra.Command) bool { return c.Name() == "completion" }) {
		t.Fatalf("found only %d command groups", len(groups))
	}
	// help takes the same topics.
	if r := runCLI(t, nil, "", "help", "acounts"); r.code != exitUsage || !strings.Contains(r.err, `did you mean "accounts"`) {
		t.Errorf("help acounts: exit %d\n%s", r.code, r.err)
	}
	if r := runCLI(t, nil, "", "help", "accounts", "list"); r.code != exitOK || !strings.Contains(r.out, "Usage:") {
		t.Errorf("help accounts list: exit %d\n%s", r.code, r.err)
	}
	for _, g := range groups {
		first := availableNames(g)[0]
		typo := first[:len(first)-1] // "lis" for "list"
		if len(first) > 4 {
			typo = first[:2] + first[3:] // "lst" for "list"
		}
		r := runCLI(t, nil, "", append(pathArgs(g), typo)...)
		if r.code != exitUsage || !strings.Contains(strings.ToLower(r.err), "did you mean") || !strings.Contains(r.err, first) {
			t.Errorf("gatehouse %s %s: exit %d, want %d and a suggestion of %q\nstdout:\n%s\nstderr:\n%s",
				strings.Join(pathArgs(g), " "), typo, r.code, exitUsage, first, r.out, r.err)
		}
		r = runCLI(t, nil, "", append(pathArgs(g), "zzqqxx")...)
		if r.code != exitUsage || !strings.Contains(r.err, `unknown command "zzqqxx"`) {
			t.Errorf("gatehouse %s zzqqxx: exit %d, want %d\n%s", strings.Join(pathArgs(g), " "), r.code, exitUsage, r.err)
		}
		if g.HasParent() {
			// Without a subcommand a group still shows its help.
			if r := runCLI(t, nil, "", pathArgs(g)...); r.code != exitOK || !strings.Contains(r.out, "Available Commands") {
				t.Errorf("gatehouse %s: exit %d, no help:\n%s%s", strings.Join(pathArgs(g), " "), r.code, r.out, r.err)
			}
		}
	}
}

// Every flag that takes one of a fixed set of values (it completes to
// them) refuses a misspelt value with exit 2 and suggests the right one,
// before anything is sent.
func TestUsage_ChoiceFlagsRefuseTypos(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	root := newRootCmd(&app{addr: ts.addr})
	tested := map[string]bool{}
	check := func(c *cobra.Command, flag string) {
		fn, ok := c.GetFlagCompletionFunc(flag)
		if !ok || flag == "account" {
			return
		}
		choices, _ := fn(c, nil, "")
		if len(choices) == 0 {
			return
		}
		name, rest, _ := strings.Cut(choices[0], "=")
		if rest == "" && strings.HasSuffix(choices[0], "=") {
			rest = "x"
		}
		bad := "x" + name
		if rest != "" {
			bad += "=" + rest
		}
		argv := append(pathArgs(c), positionals(c)...)
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name == flag || f.Annotations[cobra.BashCompOneRequiredFlag] == nil {
				return
			}
			v := "x"
			if fn, ok := c.GetFlagCompletionFunc(f.Name); ok {
				if ch, _ := fn(c, nil, ""); len(ch) > 0 {
					v = ch[0]
				}
			}
			argv = append(argv, "--"+f.Name, v)
		})
		if c.Flags().Lookup("account") != nil {
			argv = append(argv, "--account", "acme")
		}
		argv = append(argv, "--"+flag, bad)
		key := strings.Join(pathArgs(c), " ") + " --" + flag
		tested[key] = true
		r := ts.run(argv...)
		if r.code != exitUsage || !strings.Contains(r.err, "did you mean") || !strings.Contains(r.err, `"`+name+`"`) {
			t.Errorf("gatehouse %s: exit %d, want %d and `did you mean %q`\nstdout:\n%s\nstderr:\n%s",
				strings.Join(argv, " "), r.code, exitUsage, name, r.out, r.err)
		}
	}
	walk(root, func(c *cobra.Command) {
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) { check(c, f.Name) })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { check(c, f.Name) })
	})
	listCmd, _, _ := root.Find([]string{"accounts", "list"})
	check(listCmd, "output")
	for _, want := range []string{
		"accounts list --output", "audit list --resource-type", "audit list --order", "export --format",
		"customization update --language", "privacy-rules create --kind", "privacy-rules update --kind",
		"sessions start --kind", "check --role", "check --feature", "check --frame", "tokens create --role",
		"portals update --function", "representatives create --function", "settings update --set",
		"sessions list --state", "sessions list --kind",
	} {
		if !tested[want] {
			t.Errorf("%s was not tested (tested: %v)", want, tested)
		}
	}
	// The environment's output format is checked the same way.
	r := runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts.addr, "GATEHOUSE_OUTPUT": "jsn"}, "", "accounts", "list")
	if r.code != exitUsage || !strings.Contains(r.err, `did you mean "json"`) {
		t.Errorf("GATEHOUSE_OUTPUT=jsn: exit %d\n%s", r.code, r.err)
	}
}

func TestAudit_ResourceTypeTakesCommandNouns(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	ts.must("representatives", "create", "alice", "-a", "acme", "--display-name", "Alice")
	ts.must("privacy-rules", "create", "-a", "acme", "--kind", "button_block", "--selector", "button")
	for noun, typ := range map[string]string{"representatives": "representative", "reps": "representative",
		"representative": "representative", "privacy-rules": "privacy_rule", "PRIVACY_RULE": "privacy_rule", "accounts": "account"} {
		m := ts.mustJSON("audit", "list", "--resource-type", noun)
		events, _ := m["events"].([]any)
		if len(events) == 0 {
			t.Errorf("--resource-type %s: no events", noun)
		}
		for _, e := range events {
			if got := e.(map[string]any)["resource_type"]; got != typ {
				t.Errorf("--resource-type %s: event of type %v", noun, got)
			}
		}
	}
	r := ts.mustFail(exitUsage, "audit", "list", "--resource-type", "foo")
	wantIn(t, r.err, "--resource-type", "representative")
}

func TestAudit_NewestFirst(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	for _, id := range []string{"a1", "a2", "a3", "a4"} {
		ts.mustAccount(id)
	}
	revisions := func(args ...string) []float64 {
		var m struct {
			Events []struct {
				Revision json.Number `json:"revision"`
			} `json:"events"`
		}
		if err := json.Unmarshal([]byte(ts.must(append(args, "-o", "json")...)), &m); err != nil {
			t.Fatal(err)
		}
		var out []float64
		for _, e := range m.Events {
			f, _ := e.Revision.Float64()
			out = append(out, f)
		}
		return out
	}
	all := revisions("audit", "list", "--order", "oldest")
	if len(all) < 4 || !slices.IsSorted(all) {
		t.Fatalf("oldest first: %v", all)
	}
	newest := revisions("audit", "list", "--limit", "2")
	if want := []float64{all[len(all)-1], all[len(all)-2]}; !slices.Equal(newest, want) {
		t.Fatalf("audit list --limit 2: revisions %v, want the newest %v", newest, want)
	}
	if oldest := revisions("audit", "list", "--limit", "2", "--order", "oldest"); !slices.Equal(oldest, all[:2]) {
		t.Fatalf("--order oldest --limit 2: %v, want %v", oldest, all[:2])
	}
	// The help names the columns the table has.
	out := ts.must("audit", "list", "--limit", "1")
	header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
	help := ts.must("audit", "list", "--help")
	for _, col := range []string{"CHANGE", "CHANGED"} {
		if strings.Contains(help, col+" ") && !slices.Contains(header, col) {
			t.Errorf("help names a column %s the table lacks (header %v)", col, header)
		}
	}
	ts.mustFail(exitUsage, "audit", "list", "--page-token", "x")
}

// -o is --output on every command; backup's file is --file/-f.
func TestUsage_OutputShorthand(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	root := newRootCmd(&app{})
	walk(root, func(c *cobra.Command) {
		if f := c.Flags().ShorthandLookup("o"); f != nil && f.Name != "output" {
			t.Errorf("%s: -o is --%s", c.CommandPath(), f.Name)
		}
		if f := c.LocalFlags().ShorthandLookup("o"); f != nil && f.Name != "output" {
			t.Errorf("%s: -o is --%s", c.CommandPath(), f.Name)
		}
	})
	var m map[string]any
	if err := json.Unmarshal([]byte(ts.must("accounts", "get", "acme", "-o", "json")), &m); err != nil || m["id"] != "acme" {
		t.Fatalf("accounts get -o json: %v %v", m, err)
	}
	r := ts.mustFail(exitUsage, "backup", "-o", "x.db")
	wantIn(t, r.err, "--output")
}

// Every writable field of a resource has a flag on create and update.
func TestFamilies_EveryWritableFieldHasAFlag(t *testing.T) {
	t.Parallel()
	notWritable := []string{"id", "etag", "revision", "create_time", "cobrowse_url"} // cobrowse_url: cobrowse-url set
	for _, f := range families() {
		md := f.newItem().ProtoReflect().Descriptor()
		for i := 0; i < md.Fields().Len(); i++ {
			name := string(md.Fields().Get(i).Name())
			if slices.Contains(notWritable, name) || slices.ContainsFunc(f.fields, func(s fieldSpec) bool { return s.field == name }) {
				continue
			}
			t.Errorf("%s: field %s has no flag", f.use, name)
		}
	}
	ts := mustStart(t)
	ts.mustAccount("acme")
	if m := ts.mustJSON("accounts", "update", "acme", "--decision-log-percent", "25"); m["decision_log_percent"] != 25.0 {
		t.Fatalf("decision_log_percent after update: %v", m["decision_log_percent"])
	}
	if m := ts.mustJSON("accounts", "get", "acme"); m["decision_log_percent"] != 25.0 {
		t.Fatalf("decision_log_percent after get: %v", m["decision_log_percent"])
	}
}

// accounts delete removes a whole tenant: without a terminal to ask on it
// needs --yes.
func TestAccounts_DeleteNeedsConfirmation(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	r := ts.mustFail(exitUsage, "accounts", "delete", "acme")
	wantIn(t, r.err, "--yes")
	ts.must("accounts", "get", "acme")
	wantIn(t, ts.must("accounts", "delete", "acme", "--yes"), `deleted account "acme"`)
	ts.mustFail(exitError, "accounts", "get", "acme")
}

// Field violations are printed once each, under the flag that sets the
// field and with enum values spelt as the flags take them.
func TestErrors_ViolationsOnceUnderTheirFlags(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"privacy-rules", "create", "-a", "acme", "--selector", "button"},
			[]string{"field rule.kind (--kind): is required (button_block or data_mask)"}},
		{[]string{"privacy-rules", "create", "-a", "acme", "--kind", "data_mask"},
			[]string{"field rule.selector (--selector): is required"}},
		{[]string{"portals", "create", "p2", "-a", "acme", "--notification-email", "x", "--business-hours", "nope"},
			[]string{"field portal.name (--name): is required", "field portal.notification_email (--notification-email):",
				"field portal.business_hours_id (--business-hours):"}},
		{[]string{"sessions", "start", "-a", "acme", "--kind", "live_guide", "--customer", "c1"},
			[]string{"field representative_id (--rep): is required"}},
		{[]string{"allowlist", "create", "-a", "acme", "--pattern", "co.uk"}, []string{"field entry.pattern (--pattern):"}},
		{[]string{"tokens", "create", "--role", "admin", "--account", "Not A Slug"}, []string{"(--name): is required", "(--account):"}},
		{[]string{"check", "--session", "s-nope", "--role", "agent", "--actor", "alice", "--feature", "navigate"},
			[]string{"field url (--url): is required for navigate"}},
	} {
		r := ts.mustFail(exitError, tc.args...)
		wantIn(t, r.err, tc.wants...)
		if strings.Contains(r.err, "PRIVACY_RULE_KIND_") || strings.Contains(r.err, "FEATURE_") {
			t.Errorf("gatehouse %s: enum values spelt as on the wire:\n%s", strings.Join(tc.args, " "), r.err)
		}
		for _, line := range strings.Split(r.err, "\n") {
			_, desc, ok := strings.Cut(line, "): ")
			if !strings.HasPrefix(line, "  field ") || !ok {
				continue
			}
			if n := strings.Count(r.err, desc); n != 1 {
				t.Errorf("gatehouse %s: %q printed %d times:\n%s", strings.Join(tc.args, " "), desc, n, r.err)
			}
		}
	}
}

// A token the server refuses is blamed on where it came from, never on a
// header the user did not write.
func TestErrors_RefusedTokenNamesItsSource(t *testing.T) {
	t.Parallel()
	ts := mustStart(t, withAuth)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"GATEHOUSE_ADDR": ts.addr}, []string{"--token", "bogus"}, "the server refused the token from --token"},
		{map[string]string{"GATEHOUSE_ADDR": ts.addr, "GATEHOUSE_TOKEN": "gh_k-x_y"}, nil, "the server refused the token from GATEHOUSE_TOKEN"},
	} {
		r := runCLI(t, tc.env, "", append(tc.args, "accounts", "list")...)
		if r.code != exitError || !strings.Contains(r.err, tc.want) || strings.Contains(r.err, "header") {
			t.Errorf("%v: exit %d\n%s", tc.args, r.code, r.err)
		}
	}
	r := runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts.addr}, "", "--token", "bogus", "accounts", "list")
	wantIn(t, r.err, "not a Gatehouse token")
}

// gatehouse health is a probe: exit 0 only while the server serves.
func TestHealth_Probe(t *testing.T) {
	t.Parallel()
	ts := mustStart(t, withAuth) // health needs no token
	r := runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts.addr}, "", "health")
	if r.code != exitOK || strings.TrimSpace(r.out) != "SERVING" {
		t.Fatalf("health: exit %d %q %q", r.code, r.out, r.err)
	}
	r = runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts.addr}, "", "health", "-o", "json")
	if r.code != exitOK || !strings.Contains(r.out, `"status": "SERVING"`) {
		t.Fatalf("health -o json: exit %d %q", r.code, r.out)
	}
	if r := runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts.addr}, "", "health", "--service", "gatehouse.v1.DecisionService"); r.code != exitOK {
		t.Fatalf("health --service: exit %d %s", r.code, r.err)
	}
	r = runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts.addr}, "", "health", "--service", "nope.Service")
	if r.code != exitError || !strings.Contains(r.err, "NOT_FOUND") {
		t.Fatalf("unknown service: exit %d %q", r.code, r.err)
	}
	// Nothing listening: exit 1.
	r = runCLI(t, map[string]string{"GATEHOUSE_ADDR": "127.0.0.1:1"}, "", "health", "--timeout", "2s")
	if r.code != exitError || !strings.Contains(r.err, "UNAVAILABLE") {
		t.Fatalf("no server: exit %d %q", r.code, r.err)
	}
	// A server draining (grpc-go's health service, as gatehoused runs it,
	// once Shutdown began): NOT_SERVING on stdout and exit 1.
	hs := health.NewServer()
	hs.Shutdown()
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	r = runCLI(t, map[string]string{"GATEHOUSE_ADDR": lis.Addr().String()}, "", "health")
	if r.code != exitError || strings.TrimSpace(r.out) != "NOT_SERVING" || r.err != "" {
		t.Fatalf("draining server: exit %d %q %q", r.code, r.out, r.err)
	}
}

func TestSessions_List(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")
	ts.must("representatives", "create", "alice", "-a", "acme", "--display-name", "Alice", "--live-guide")
	ts.must("representatives", "create", "bob", "-a", "acme", "--display-name", "Bob", "--live-guide")
	id := func(args ...string) string {
		return ts.mustJSON(append([]string{"sessions", "start", "-a", "acme", "--kind", "live_guide"}, args...)...)["id"].(string)
	}
	s1 := id("--rep", "alice", "--customer", "c1")
	s2 := id("--rep", "bob", "--customer", "c2")
	ts.must("sessions", "end", s2)
	ids := func(args ...string) []string {
		var m struct {
			Sessions []struct {
				ID string `json:"id"`
			} `json:"sessions"`
		}
		if err := json.Unmarshal([]byte(ts.must(append([]string{"sessions", "list", "-a", "acme", "-o", "json"}, args...)...)), &m); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range m.Sessions {
			out = append(out, s.ID)
		}
		slices.Sort(out)
		return out
	}
	all := []string{s1, s2}
	slices.Sort(all)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, all},
		{[]string{"--limit", "1"}, all[:1]},
		{[]string{"--state", "active"}, []string{s1}},
		{[]string{"--state", "ended", "--rep", "bob"}, []string{s2}},
		{[]string{"--customer", "c1", "--kind", "live_guide"}, []string{s1}},
		{[]string{"--kind", "support"}, nil},
		{[]string{"--since", "1h"}, all},
		{[]string{"--until", "2000-01-01"}, nil},
	} {
		if got := ids(tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("sessions list %v: %v, want %v", tc.args, got, tc.want)
		}
	}
	out := ts.must("sessions", "list", "-a", "acme")
	wantIn(t, out, "ID", "STATE", "REPRESENTATIVE_ID", s1, s2)
	wantIn(t, ts.mustFail(exitUsage, "sessions", "list").err, "--account")
	wantIn(t, ts.mustFail(exitError, "sessions", "list", "-a", "acme", "--rep", "Not A Slug").err, "(--rep)")
}

// The CLI offers exactly the resource types the server's audit log records.
func TestAudit_CLIResourceTypesAreTheServers(t *testing.T) {
	t.Parallel()
	cli := slices.Clone(auditResourceTypes)
	slices.Sort(cli)
	if server := store.AuditResourceTypes(); !slices.Equal(cli, server) {
		t.Fatalf("CLI --resource-type choices %v, server %v", cli, server)
	}
}
