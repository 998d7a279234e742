package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// emit writes v in the --output format: json and yaml render v (protojson
// with proto field names for messages, encoding/json otherwise); table
// calls table, which writes the human view.
func (a *app) emit(v any, table func(w io.Writer) error) error {
	switch a.output {
	case "json":
		b, err := jsonOf(v)
		if err != nil {
			return err
		}
		_, err = a.out.Write(b)
		return err
	case "yaml":
		b, err := jsonOf(v)
		if err != nil {
			return err
		}
		y, err := yamlFromJSON(b)
		if err != nil {
			return err
		}
		_, err = a.out.Write(y)
		return err
	}
	return table(a.out)
}

// protoJSON are the options of every JSON rendering of a message.
var protoJSON = protojson.MarshalOptions{UseProtoNames: true}

// jsonOf renders v as JSON indented by two spaces with a final newline.
// protojson's output is re-indented, so the bytes do not depend on its
// deliberately unstable whitespace.
func jsonOf(v any) ([]byte, error) {
	var raw []byte
	var err error
	switch m := v.(type) {
	case proto.Message:
		raw, err = protoJSON.Marshal(m)
	case []proto.Message:
		parts := make([][]byte, len(m))
		for i, e := range m {
			if parts[i], err = protoJSON.Marshal(e); err != nil {
				return nil, err
			}
		}
		raw = append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
	default:
		raw, err = json.Marshal(v)
	}
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// yamlFromJSON converts JSON to block-style YAML, keeping the key order.
// Strings that would read back as another type ("true", "09:00" is fine,
// "2026-12-25" is not) are quoted by the encoder.
func yamlFromJSON(j []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(j, &doc); err != nil {
		return nil, err
	}
	return encodeYAML(&doc)
}

func encodeYAML(n *yaml.Node) ([]byte, error) {
	plainStyle(n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// plainStyle drops the flow and quoting styles a JSON source leaves on
// the nodes, so the encoder picks block style and quotes only when needed.
// Times of day such as 10:00 and words such as yes stay quoted even though
// YAML 1.2 reads them as strings: YAML 1.1 parsers (PyYAML) would read
// base-60 numbers and booleans.
func plainStyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && (sexagesimal.MatchString(n.Value) || yaml11Bool.MatchString(n.Value)) {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		plainStyle(c)
	}
}

var yaml11Bool = regexp.MustCompile(`^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$`)

var sexagesimal = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$`)

// nodeJSON converts a YAML node to JSON: mappings to objects (keys in
// order), sequences to arrays, scalars by their resolved tag.
func nodeJSON(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeNodeJSON(&buf, n); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeNodeJSON(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			buf.WriteString("null")
			return nil
		}
		return writeNodeJSON(buf, n.Content[0])
	case yaml.AliasNode:
		return writeNodeJSON(buf, n.Alias)
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteByte(',')
			}
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a mapping key must be a plain value", k.Line)
			}
			kb, _ := json.Marshal(k.Value)
			buf.Write(kb)
			buf.WriteByte(':')
			if err := writeNodeJSON(buf, n.Content[i+1]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeNodeJSON(buf, c); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			buf.WriteString("null")
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return err
			}
			buf.WriteString(strconv.FormatBool(b))
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				var u uint64
				if uerr := n.Decode(&u); uerr != nil {
					return err
				}
				buf.WriteString(strconv.FormatUint(u, 10))
				return nil
			}
			buf.WriteString(strconv.FormatInt(i, 10))
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return err
			}
			b, err := json.Marshal(f)
			if err != nil {
				return fmt.Errorf("line %d: %w", n.Line, err)
			}
			buf.Write(b)
		default:
			b, _ := json.Marshal(n.Value)
			buf.Write(b)
		}
	default:
		return fmt.Errorf("line %d: unsupported YAML node", n.Line)
	}
	return nil
}

// newTable returns a tab-aligned writer; cells are separated by '\t'.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

func row(tw io.Writer, cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

// column is one column of a list table.
type column struct {
	header string
	value  func(m protoreflect.Message) string
}

// fieldCol is the column of a field, headed by its upper-cased name.
func fieldCol(name string) column {
	return column{header: strings.ToUpper(name), value: func(m protoreflect.Message) string {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return ""
		}
		return formatValue(m, fd, ", ")
	}}
}

// cols returns the columns of the named fields.
func cols(names ...string) []column {
	out := make([]column, len(names))
	for i, n := range names {
		out[i] = fieldCol(n)
	}
	return out
}

// listTable writes items as rows of cols.
func listTable(w io.Writer, cs []column, items []protoreflect.Message) error {
	tw := newTable(w)
	hdr := make([]string, len(cs))
	for i, c := range cs {
		hdr[i] = c.header
	}
	row(tw, hdr...)
	for _, m := range items {
		cells := make([]string, len(cs))
		for i, c := range cs {
			cells[i] = c.value(m)
		}
		row(tw, cells...)
	}
	return tw.Flush()
}

// detailTable writes every field of m, one per line (list fields one
// element per line), in field order.
func detailTable(w io.Writer, m proto.Message) error {
	tw := newTable(w)
	writeDetail(tw, m.ProtoReflect())
	return tw.Flush()
}

func writeDetail(tw io.Writer, r protoreflect.Message) {
	fields := r.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.IsList() && fd.Kind() == protoreflect.MessageKind {
			l := r.Get(fd).List()
			if l.Len() == 0 {
				row(tw, string(fd.Name()), "")
			}
			for j := 0; j < l.Len(); j++ {
				if j == 0 {
					row(tw, string(fd.Name()), formatMessage(l.Get(j).Message()))
				} else {
					fmt.Fprintln(tw, "\t"+formatMessage(l.Get(j).Message()))
				}
			}
			continue
		}
		row(tw, string(fd.Name()), formatValue(r, fd, ", "))
	}
}

// formatValue renders one field of m for a table.
func formatValue(m protoreflect.Message, fd protoreflect.FieldDescriptor, sep string) string {
	v := m.Get(fd)
	switch {
	case fd.IsList():
		l := v.List()
		parts := make([]string, l.Len())
		for i := range parts {
			parts[i] = formatScalar(fd, l.Get(i))
		}
		return strings.Join(parts, sep)
	case fd.IsMap():
		var parts []string
		v.Map().Range(func(k protoreflect.MapKey, val protoreflect.Value) bool {
			parts = append(parts, k.String()+"="+formatScalar(fd.MapValue(), val))
			return true
		})
		slices.Sort(parts)
		return strings.Join(parts, sep)
	case fd.Kind() == protoreflect.MessageKind && !m.Has(fd):
		return ""
	}
	return formatScalar(fd, v)
}

func formatScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	case protoreflect.EnumKind:
		return enumLabel(fd.Enum(), v.Enum())
	case protoreflect.MessageKind:
		return formatMessage(v.Message())
	case protoreflect.Uint64Kind, protoreflect.Uint32Kind, protoreflect.Fixed64Kind, protoreflect.Fixed32Kind:
		if v.Uint() == 0 {
			return ""
		}
		return strconv.FormatUint(v.Uint(), 10)
	case protoreflect.Int64Kind, protoreflect.Int32Kind, protoreflect.Sint64Kind, protoreflect.Sint32Kind:
		if v.Int() == 0 {
			return ""
		}
		return strconv.FormatInt(v.Int(), 10)
	case protoreflect.BytesKind:
		return fmt.Sprintf("%d bytes", len(v.Bytes()))
	}
	return v.String()
}

// formatMessage renders the messages a table shows in one cell.
func formatMessage(m protoreflect.Message) string {
	switch x := m.Interface().(type) {
	case *timestamppb.Timestamp:
		if x.GetSeconds() == 0 && x.GetNanos() == 0 {
			return ""
		}
		return x.AsTime().UTC().Format(time.RFC3339)
	case *gatehousev1.SupportFunctions:
		return formatFunctions(x)
	case *gatehousev1.WeeklyWindow:
		return formatWindow(x)
	case *gatehousev1.Holiday:
		return formatHoliday(x)
	case *gatehousev1.ExternalSpecialist:
		if x.GetDisplayName() == "" {
			return x.GetId()
		}
		return x.GetId() + " (" + x.GetDisplayName() + ")"
	}
	b, err := protoJSON.Marshal(m.Interface())
	if err != nil {
		return "?"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// enumLabel is an enum value's name without the type prefix
// (REASON_ELEMENT_BLOCKED -> ELEMENT_BLOCKED).
func enumLabel(ed protoreflect.EnumDescriptor, n protoreflect.EnumNumber) string {
	v := ed.Values().ByNumber(n)
	if v == nil {
		return strconv.Itoa(int(n))
	}
	return strings.TrimPrefix(string(v.Name()), enumPrefix(ed))
}

// enumPrefix is the common prefix of an enum's value names, taken from
// its X_UNSPECIFIED value.
func enumPrefix(ed protoreflect.EnumDescriptor) string {
	first := string(ed.Values().Get(0).Name())
	return strings.TrimSuffix(first, "UNSPECIFIED")
}

// messages returns the elements of the repeated message field of a list
// response (the only one it has).
func messages(resp proto.Message) []protoreflect.Message {
	r := resp.ProtoReflect()
	fd := itemsField(r.Descriptor())
	if fd == nil {
		return nil
	}
	l := r.Get(fd).List()
	out := make([]protoreflect.Message, l.Len())
	for i := range out {
		out[i] = l.Get(i).Message()
	}
	return out
}

func itemsField(md protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if fd := fields.Get(i); fd.IsList() && fd.Kind() == protoreflect.MessageKind {
			return fd
		}
	}
	return nil
}
