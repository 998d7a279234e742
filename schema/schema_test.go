package schema_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Compile compiles the account schema.
func Compile(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.AccountV1))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("account.v1.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("account.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// outputOnly are the fields a document leaves out.
var outputOnly = []string{"etag", "revision", "create_time", "account_id"}

// TestAccountV1_CoversTheAPI: every field the API can write in each
// resource of the document is in the schema, and the schema names no
// other, so the schema cannot drift from the protos.
func TestAccountV1_CoversTheAPI(t *testing.T) {
	Compile(t)
	var s struct {
		Properties map[string]struct {
			Ref   string `json:"$ref"`
			Items struct {
				Ref string `json:"$ref"`
			} `json:"items"`
		} `json:"properties"`
		Defs map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(schema.AccountV1, &s); err != nil {
		t.Fatal(err)
	}
	doc := (&gatehousev1.AccountDocument{}).ProtoReflect().Descriptor()
	var walk func(md protoreflect.MessageDescriptor, def string)
	seen := map[string]bool{}
	walk = func(md protoreflect.MessageDescriptor, def string) {
		if seen[def] {
			return
		}
		seen[def] = true
		props, ok := s.Defs[def]
		if !ok {
			t.Errorf("schema has no $defs/%s", def)
			return
		}
		var want, got []string
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			if slices.Contains(outputOnly, string(fd.Name())) {
				continue
			}
			want = append(want, string(fd.Name()))
			if fd.Kind() == protoreflect.MessageKind {
				walk(fd.Message(), string(fd.Message().Name()))
			}
		}
		for k := range props.Properties {
			got = append(got, k)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("$defs/%s: properties %v, the API has %v", def, got, want)
		}
	}
	for i := range doc.Fields().Len() {
		fd := doc.Fields().Get(i)
		p, ok := s.Properties[string(fd.Name())]
		if !ok {
			t.Errorf("schema lacks %s", fd.Name())
			continue
		}
		if fd.Kind() != protoreflect.MessageKind {
			continue
		}
		ref := p.Ref + p.Items.Ref
		if want := "#/$defs/" + string(fd.Message().Name()); ref != want {
			t.Errorf("%s refers to %q, want %q", fd.Name(), ref, want)
		}
		walk(fd.Message(), string(fd.Message().Name()))
	}
	if len(s.Properties) != doc.Fields().Len() {
		t.Errorf("schema has %d top-level properties, the document %d", len(s.Properties), doc.Fields().Len())
	}
}

// TestAccountV1_RefusesTypos: the schema is strict, so an editor flags a
// misspelt key or an unknown enum value.
func TestAccountV1_RefusesTypos(t *testing.T) {
	s := Compile(t)
	for _, bad := range []string{
		`{"format":"gatehouse.account/v1"}`,
		`{"format":"gatehouse.account/v2","account":{"id":"a"}}`,
		`{"format":"gatehouse.account/v1","account":{"id":"A b"}}`,
		`{"format":"gatehouse.account/v1","account":{"id":"a"},"portal":[]}`,
		`{"format":"gatehouse.account/v1","account":{"id":"a"},"settings":{"chatt":true}}`,
		`{"format":"gatehouse.account/v1","account":{"id":"a"},"privacy_rules":[{"id":"p","kind":"BUTTON_BLOCK","selector":"a"}]}`,
		`{"format":"gatehouse.account/v1","account":{"id":"a"},"representatives":[{"id":"r","display_name":"R","functions":{"send_file":true}}]}`,
	} {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(bad)))
		if err != nil {
			t.Fatal(err)
		}
		if s.Validate(v) == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
