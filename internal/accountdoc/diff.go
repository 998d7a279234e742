package accountdoc

import (
	"bytes"
	"encoding/json"
	"reflect"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var flatJSON = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// flatten returns the fields of m (without output-only ones) by dotted
// path ("functions.send_files"), each value as JSON; fields at their zero
// value are left out, so that unset and zero compare equal. Lists are one
// value. A nil or invalid m has no fields.
func flatten(m proto.Message) map[string]string {
	out := map[string]string{}
	if m == nil || !m.ProtoReflect().IsValid() {
		return out
	}
	b, err := flatJSON.Marshal(strip(m))
	if err != nil {
		return out
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		return out
	}
	// EmitUnpopulated brings the cleared output-only fields back.
	for _, f := range OutputOnly {
		delete(v, f)
	}
	var walk func(prefix string, v map[string]any)
	walk = func(prefix string, v map[string]any) {
		for k, x := range v {
			// No document resource has a map field: every object is a
			// message, whose fields get their own paths.
			if sub, ok := x.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			if isZero(x) {
				continue
			}
			j, _ := json.Marshal(x)
			out[prefix+k] = string(j)
		}
	}
	walk("", v)
	return out
}

func isZero(x any) bool {
	switch v := x.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case float64:
		return v == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return reflect.ValueOf(x).IsZero()
}

// enumZero: an enum left unset marshals as its _UNSPECIFIED name.
func enumZero(s string) bool {
	return bytes.HasSuffix([]byte(s), []byte(`_UNSPECIFIED"`))
}

// fieldChanges lists the fields that differ between before and after
// (either may be nil), in path order.
func fieldChanges(before, after proto.Message) []*gatehousev1.FieldChange {
	b, a := flatten(before), flatten(after)
	paths := map[string]bool{}
	for p := range b {
		paths[p] = true
	}
	for p := range a {
		paths[p] = true
	}
	var out []*gatehousev1.FieldChange
	for _, p := range sortedKeys(paths) {
		bv, av := b[p], a[p]
		if enumZero(bv) {
			bv = ""
		}
		if enumZero(av) {
			av = ""
		}
		if bv != av {
			out = append(out, &gatehousev1.FieldChange{Path: p, BeforeJson: bv, AfterJson: av})
		}
	}
	return out
}

// sameFields reports whether a and b hold the same values, output-only
// fields aside.
func sameFields(a, b proto.Message) bool { return len(fieldChanges(a, b)) == 0 }
