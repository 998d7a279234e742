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
var adminOnly = map[string]bool{"COBROWSE_URL_ALREADY_SET": true, "COBROWSE_NAMES_EXHAUSTED": true}

// TestReasons_EveryServerReasonMapped: every ErrorInfo reason the server
// declares (a const named reason… in internal/server) has a sentinel, so
// a reason added there without one here fails.
func TestReasons_EveryServerReasonMapped(t *testing.T) {
	files, err := filepath.Glob("../internal/server/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("server sources: %v (%d files)", err, len(files))
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
				if !strings.HasPrefix(id.Name, "reason") || i >= len(vs.Values) {
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
