package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// validateDocument checks a YAML or JSON account document against the
// committed schema.
func validateDocument(t *testing.T, doc string) {
	t.Helper()
	c := jsonschema.NewCompiler()
	sv, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.AccountV1))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("account.v1.json", sv); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("account.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(inst); err != nil {
		t.Fatalf("document does not validate against schema/account.v1.json: %v\n%s", err, doc)
	}
}

// TestExport_ValidatesAgainstTheSchema: every document export writes, YAML
// or JSON, small or with something in every section, validates.
func TestExport_ValidatesAgainstTheSchema(t *testing.T) {
	t.Parallel()
	ts := mustStart(t)
	ts.richAccount("acme")
	ts.mustAccount("tiny")
	for _, args := range [][]string{
		{"export", "-a", "acme"},
		{"export", "-a", "acme", "--format", "json"},
		{"export", "-a", "tiny"},
		{"export", "-a", "tiny", "--format", "json"},
	} {
		validateDocument(t, ts.must(args...))
	}
	if got := ts.must("schema"); got != string(schema.AccountV1) {
		t.Fatal("gatehouse schema does not print schema/account.v1.json")
	}
	// The example documents too.
	files, _ := filepath.Glob("../../examples/policy/*.yaml")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yaml") { // decision tests, not documents
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		validateDocument(t, string(b))
	}
}
