package client

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// adminOnly are ErrorInfo reasons of AdminService calls only, which the
// client does not wrap.
var adminOnly = map[string]bool{"COBROWSE_URL_ALREADY_SET": true, "COBROWSE_NAMES_EXHAUSTED": true, "LAST_SUBPORTAL": true,
	"ACCOUNT_CHANGED": true, "APPLY_TOO_LARGE": true}

// TestReasons_EveryServerReasonMapped: every ErrorInfo reason the server
// declares (a const named reason… or Reason… in internal/server, the
// services of internal/service or the error model of internal/errs) has a
// sentinel, so a reason added there without one here fails.
func TestReasons_EveryServerReasonMapped(t *testing.T) {
	var files []string
	for _, dir := range []string{"server", "service", "errs"} {
		fs, err := filepath.Glob("../internal/" + dir + "/*.go")
		if err != nil || len(fs) == 0 {
			t.Fatalf("%s sources: %v (%d files)", dir, err, len(fs))
		}
		files = append(files, fs...)
	}
	found := 0
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, id := range vs.Names {
				if !strings.HasPrefix(strings.ToLower(id.Name), "reason") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				reason, _ := strconv.Unquote(lit.Value)
				found++
				if _, ok := byReason[reason]; !ok && !adminOnly[reason] {
					t.Errorf("server reason %s (%s) has no sentinel", reason, id.Name)
				}
			}
			return true
		})
	}
	if found < 10 {
		t.Fatalf("found %d server reasons; the scan is broken", found)
	}
}
