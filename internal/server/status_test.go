package server

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestStatus_MappedInOneFile: outside status.go no non-test file of the
// edge makes a status or an error detail (status.New/Error/…, errdetails),
// so that handlers, services and transaction closures return errs kinds
// and the wire code of each is chosen in one place.
func TestStatus_MappedInOneFile(t *testing.T) {
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	makers := map[string]bool{"New": true, "Newf": true, "Error": true, "Errorf": true, "FromContextError": true, "Convert": true}
	fset := token.NewFileSet()
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || name == "status.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			if (pkg.Name == "status" && makers[sel.Sel.Name]) || pkg.Name == "errdetails" {
				t.Errorf("%s: %s.%s: return an errs kind; status.go maps it", fset.Position(sel.Pos()), pkg.Name, sel.Sel.Name)
			}
			return true
		})
	}
}

// TestStatus_Kinds maps every errs kind, with its details, and the errors
// that are not errs: each kind has its own code, an unknown error is
// INTERNAL with a generic message and is logged once with its cause.
func TestStatus_Kinds(t *testing.T) {
	want := map[errs.Kind]codes.Code{
		errs.Invalid: codes.InvalidArgument, errs.NotFound: codes.NotFound, errs.AlreadyExists: codes.AlreadyExists,
		errs.Conflict: codes.Aborted, errs.FailedPrecondition: codes.FailedPrecondition, errs.PermissionDenied: codes.PermissionDenied,
		errs.Unauthenticated: codes.Unauthenticated, errs.ResourceExhausted: codes.ResourceExhausted, errs.DataLoss: codes.DataLoss,
		errs.Unavailable: codes.Unavailable, errs.Unimplemented: codes.Unimplemented,
	}
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	for k := errs.Invalid; k <= errs.Unimplemented; k++ {
		err := errs.New(k, "m %d", k)
		got := status.Convert(mapError(context.Background(), log, fmt.Errorf("wrapped: %w", err)))
		if got.Code() != want[k] || got.Message() != err.Message {
			t.Errorf("%s: got %v %q, want %v %q", k, got.Code(), got.Message(), want[k], err.Message)
		}
	}
	if logged.Len() != 0 {
		t.Errorf("refusals were logged: %s", logged.String())
	}

	e := errs.Precondition("SOME_REASON", map[string]string{"k": "v"}, "refused")
	e.RetryAfter = 50e6
	st := status.Convert(mapError(context.Background(), log, e))
	if st.Code() != codes.FailedPrecondition || errorReason(st) != "SOME_REASON" || errorMeta(st)["k"] != "v" || len(st.Details()) != 2 {
		t.Errorf("reason and retry: %v %v", st.Code(), st.Details())
	}
	var v violations
	v.add("a", "is bad")
	v.add("b", "is worse")
	st = status.Convert(mapError(context.Background(), log, v.err()))
	if got := fieldViolations(st); st.Code() != codes.InvalidArgument || len(got) != 2 || got[0] != "a" || got[1] != "b" || st.Message() != "invalid request: a: is bad" {
		t.Errorf("violations: %v %q %v", st.Code(), st.Message(), got)
	}

	for _, err := range []error{errors.New("secret cause"), errs.New(errs.Internal, "secret cause"), &errs.Error{Kind: errs.Internal, Message: "x", Cause: errors.New("secret cause")}} {
		logged.Reset()
		st = status.Convert(mapError(context.Background(), log, err))
		if st.Code() != codes.Internal || st.Message() != "internal error" {
			t.Errorf("%v: got %v %q, want INTERNAL \"internal error\"", err, st.Code(), st.Message())
		}
		if n := strings.Count(logged.String(), "secret cause"); n > 1 {
			t.Errorf("%v logged %d times", err, n)
		}
	}
	logged.Reset()
	_ = mapError(context.Background(), log, errors.New("secret cause"))
	if n := strings.Count(logged.String(), "secret cause"); n != 1 {
		t.Errorf("an unknown error was logged %d times, want once: %s", n, logged.String())
	}
}
