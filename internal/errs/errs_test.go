package errs

import (
	"errors"
	"fmt"
	"testing"
)

func TestViolations(t *testing.T) {
	var v Violations
	if v.Err() != nil {
		t.Fatal("no violations: an error")
	}
	v.Add("a.b", "must be %d", 1)
	v.Add("c", "is required")
	err := v.Err()
	e, ok := As(fmt.Errorf("wrapped: %w", err))
	if !ok || e.Kind != Invalid || len(e.Fields) != 2 || e.Fields[1].Field != "c" {
		t.Fatalf("got %#v", err)
	}
	if err.Error() != "invalid request: a.b: must be 1" {
		t.Fatalf("message %q names the first violation", err.Error())
	}
}

func TestKinds(t *testing.T) {
	if KindOf(errors.New("x")) != Internal || ReasonOf(errors.New("x")) != "" {
		t.Fatal("a plain error is not Internal")
	}
	err := StaleEtag("portal", "p", "7", "6")
	if KindOf(err) != Conflict || ReasonOf(err) != ReasonStaleEtag || err.Metadata["current_etag"] != "7" {
		t.Fatalf("stale etag: %#v", err)
	}
	if got := SessionNotFound("s-1").Error(); got != `session "s-1" not found` {
		t.Fatalf("session not found: %q", got)
	}
	p := Prefix(SessionNotFound("s-1"), "checks[2]: ")
	if p.Error() != `checks[2]: session "s-1" not found` || KindOf(p) != NotFound {
		t.Fatalf("prefixed: %v", p)
	}
	plain := errors.New("x")
	if Prefix(plain, "y: ") != plain {
		t.Fatal("Prefix changed an error that is not an *Error")
	}
	for k := Internal; k <= Unimplemented; k++ {
		if k.String() == "" || k.String()[0] == 'K' {
			t.Errorf("kind %d has no name", k)
		}
	}
}
