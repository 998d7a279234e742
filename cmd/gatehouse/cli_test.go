package main

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/protobuf/proto"
)

func TestErrors_Rendering(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.mustAccount("acme")

	// INVALID_ARGUMENT: every field violation on its own line.
	r := ts.mustFail(exitError, "allowlist", "create", "-a", "acme", "--pattern", "co.uk")
	wantIn(t, r.err, "Error: INVALID_ARGUMENT:", "\n  field entry.pattern (--pattern): ")
	r = ts.mustFail(exitError, "portals", "create", "p2", "-a", "acme", "--notification-email", "not-an-address", "--business-hours", "nope")
	if n := strings.Count(r.err, "\n  field "); n < 3 {
		t.Fatalf("want violations of name, e-mail and hours, got %d:\n%s", n, r.err)
	}
	wantIn(t, r.err, "field portal.name (--name):", "field portal.notification_email (--notification-email):", "field portal.business_hours_id (--business-hours):")
	if r.out != "" {
		t.Fatalf("an error printed to stdout: %q", r.out)
	}
	// ALREADY_EXISTS, NOT_FOUND, FAILED_PRECONDITION with its reason.
	wantIn(t, ts.mustFail(exitError, "accounts", "create", "acme", "--display-name", "Again").err, "Error: ALREADY_EXISTS:")
	wantIn(t, ts.mustFail(exitError, "teams", "get", "nope", "-a", "acme").err, `Error: NOT_FOUND: team "nope" not found`)
	ts.must("portals", "create", "p", "-a", "acme", "--name", "P")
	ts.must("teams", "create", "t", "-a", "acme", "--name", "T", "--portal", "p-default")
	r = ts.mustFail(exitError, "portals", "delete", "p-default", "-a", "acme")
	wantIn(t, r.err, "Error: FAILED_PRECONDITION:")

	// Usage errors exit 2.
	wantIn(t, ts.mustFail(exitUsage, "accounts", "list", "--bogus").err, "unknown flag: --bogus")
	wantIn(t, ts.mustFail(exitUsage, "accounts", "get").err, "accepts 1 arg(s)")
	wantIn(t, ts.mustFail(exitUsage, "nonsense").err, `unknown command "nonsense"`)
}

func TestCompletion_Scripts(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := runCLI(t, nil, "", "completion", shell)
		if r.code != 0 || !strings.Contains(r.out, "gatehouse") || len(r.out) < 500 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, r.code, len(r.out), r.err)
		}
	}
	// Dynamic completion of ids and enum flags.
	ts := mustStart(t)
	ts.mustAccount("acme")
	ts.must("portals", "create", "helpdesk", "-a", "acme", "--name", "Help desk")
	wantIn(t, ts.must("__complete", "portals", "get", "-a", "acme", ""), "helpdesk\n", "helpdesk-default\n")
	wantIn(t, ts.must("__complete", "check", "--feature", ""), "click\n", "send_files\n")
	wantIn(t, ts.must("__complete", "portals", "list", "--account", ""), "acme\n")
}

func TestParseElement(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want *gatehousev1.Element
	}{
		{"button", &gatehousev1.Element{Tag: "button"}},
		{"button.pay.primary#go[name=pay]", &gatehousev1.Element{Tag: "button", Id: "go", Classes: []string{"pay", "primary"}, Attributes: map[string]string{"name": "pay"}}},
		{`body > form#f.a > input[type="text"][data-x='a > b]'][required]`, &gatehousev1.Element{Tag: "input",
			Attributes: map[string]string{"type": "text", "data-x": "a > b]", "required": ""},
			Ancestors:  []*gatehousev1.ElementNode{{Tag: "body"}, {Tag: "form", Id: "f", Classes: []string{"a"}}}}},
		{"#card-number", &gatehousev1.Element{Id: "card-number"}},
		{"html>body>.x", &gatehousev1.Element{Classes: []string{"x"}, Ancestors: []*gatehousev1.ElementNode{{Tag: "html"}, {Tag: "body"}}}},
	} {
		got, err := parseElement(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !proto.Equal(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "a >", "> a", "a[b", "a[b='c]", "a b", "a.", "a#", `a"b"`, "a[=x]"} {
		if _, err := parseElement(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseWindowsAndHolidays(t *testing.T) {
	t.Parallel()
	w, err := parseWindows("fri-mon 22:00-02:00")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range w {
		got = append(got, formatWindow(x))
	}
	if want := []string{"fri 22:00-02:00", "sat 22:00-02:00", "sun 22:00-02:00", "mon 22:00-02:00"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("wrapping range: %v", got)
	}
	if w, err := parseWindows("Monday,WED 09:00-24:00"); err != nil || len(w) != 2 || w[1].GetDay() != gatehousev1.Weekday_WEEKDAY_WEDNESDAY || w[0].GetEnd() != "24:00" {
		t.Fatalf("list: %v %v", w, err)
	}
	for _, bad := range []string{"mon", "mon 9-17", "mon 09:00", "funday 09:00-17:00", "mon 09:00-17:00 extra"} {
		if _, err := parseWindows(bad); err == nil {
			t.Errorf("window %q: no error", bad)
		}
	}
	for in, want := range map[string]*gatehousev1.Holiday{
		"2026-12-25 closed":                    {Date: "2026-12-25", Closed: true},
		"2026-12-25 CLOSED Christmas Day":      {Date: "2026-12-25", Closed: true, Name: "Christmas Day"},
		"2026-12-24 09:00-12:00 Christmas Eve": {Date: "2026-12-24", Start: "09:00", End: "12:00", Name: "Christmas Eve"},
	} {
		h, err := parseHoliday(in)
		if err != nil || !proto.Equal(h, want) {
			t.Errorf("%q: %v %v", in, h, err)
		}
		if formatHoliday(h) != strings.Replace(in, "CLOSED", "closed", 1) {
			t.Errorf("format %q: %q", in, formatHoliday(h))
		}
	}
	for _, bad := range []string{"2026-12-25", "25.12.2026 closed", "2026-12-25 open"} {
		if _, err := parseHoliday(bad); err == nil {
			t.Errorf("holiday %q: no error", bad)
		}
	}
}

func TestParseFunctionAndEnum(t *testing.T) {
	t.Parallel()
	names, on, err := parseFunction("Send-Files=false")
	if err != nil || on || !reflect.DeepEqual(names, []string{"send_files"}) {
		t.Fatalf("send-files=false: %v %v %v", names, on, err)
	}
	if names, on, err := parseFunction("all"); err != nil || !on || len(names) != 12 {
		t.Fatalf("all: %v %v %v", names, on, err)
	}
	for _, bad := range []string{"fly", "send_files=perhaps"} {
		if _, _, err := parseFunction(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	for _, in := range []string{"view_element", "VIEW-ELEMENT", "FEATURE_VIEW_ELEMENT", " view element "} {
		if n, err := parseEnum(featureDesc, in); err != nil || gatehousev1.Feature(n) != gatehousev1.Feature_FEATURE_VIEW_ELEMENT {
			t.Errorf("%q: %v %v", in, n, err)
		}
	}
	for _, bad := range []string{"unspecified", "FEATURE_UNSPECIFIED", "", "hover"} {
		if _, err := parseEnum(featureDesc, bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-01T08:00:00+01:00": time.Date(2026, 11, 1, 7, 0, 0, 0, time.UTC),
		"2026-11-01":                time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"90m":                       now.Add(-90 * time.Minute),
	} {
		ts, err := parseWhen(in, now)
		if err != nil || !ts.AsTime().Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, ts.AsTime(), err, want)
		}
	}
	if ts, err := parseWhen("", now); ts != nil || err != nil {
		t.Errorf("empty: %v %v", ts, err)
	}
	if _, err := parseWhen("-5m", now); err == nil {
		t.Error("negative duration accepted")
	}
}

func TestAuditChange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ before, after, want string }{
		{"", `{"id":"a"}`, "create"},
		{`{"id":"a"}`, "", "delete"},
		{`{"id":"a","name":"x","revision":1}`, `{"id":"a","name":"y","revision":2}`, "update name"},
		{`{"id":"a","b":1,"c":2}`, `{"id":"a","c":3,"d":4}`, "update b,c,d"},
		{`{"id":"a","revision":1}`, `{"id":"a","revision":2}`, "update"},
	} {
		if got := auditChange(tc.before, tc.after); got != tc.want {
			t.Errorf("%s -> %s: %q, want %q", tc.before, tc.after, got, tc.want)
		}
	}
}

// TestImports_PublicAPIOnly keeps the CLI a client of the public API:
// outside tests it imports, of this module, only the public packages in
// cliImports: the generated API, the JSON Schemas, the decision-test
// runner (which compiles a document with the server's own code) and the
// build's version (internal/buildinfo, shared with the daemon; no API).
func TestImports_PublicAPIOnly(t *testing.T) {
	t.Parallel()
	const module = "github.com/gatehouse-dev/gatehouse/"
	cliImports := []string{"gen/gatehouse/v1", "schema", "policytest", "internal/buildinfo"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if rest, ok := strings.CutPrefix(p, module); ok && !slices.Contains(cliImports, rest) {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
