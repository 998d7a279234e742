package notify_test

// Go's standard library has no XML Schema validator, so these tests check
// the records against docs/notification.xsd with a small validator for the
// subset of XSD 1.0 that the schema uses: one global element whose complex
// type is a sequence of simple-typed elements (minOccurs/maxOccurs), the
// built-in types xs:string, xs:int, xs:dateTime and xs:duration, and named
// simple types restricting them with xs:pattern, xs:minInclusive,
// xs:maxInclusive and xs:maxLength. The validator refuses a schema that uses
// anything else, so the schema cannot outgrow it unnoticed. When xmllint is
// installed the same documents are also checked by a full validator.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

const (
	xsdNS      = "http://www.w3.org/2001/XMLSchema"
	schemaPath = "../../docs/notification.xsd"
)

type xsdSchema struct {
	TargetNamespace    string          `xml:"targetNamespace,attr"`
	ElementFormDefault string          `xml:"elementFormDefault,attr"`
	Attrs              []xml.Attr      `xml:",any,attr"`
	Elements           []xsdElement    `xml:"http://www.w3.org/2001/XMLSchema element"`
	SimpleTypes        []xsdSimpleType `xml:"http://www.w3.org/2001/XMLSchema simpleType"`
}

type xsdElement struct {
	Name        string `xml:"name,attr"`
	Type        string `xml:"type,attr"`
	MinOccurs   string `xml:"minOccurs,attr"`
	MaxOccurs   string `xml:"maxOccurs,attr"`
	ComplexType *struct {
		Sequence *struct {
			Elements []xsdElement `xml:"http://www.w3.org/2001/XMLSchema element"`
		} `xml:"http://www.w3.org/2001/XMLSchema sequence"`
	} `xml:"http://www.w3.org/2001/XMLSchema complexType"`
}

type xsdValue struct {
	Value string `xml:"value,attr"`
}

type xsdSimpleType struct {
	Name        string `xml:"name,attr"`
	Restriction struct {
		Base         string     `xml:"base,attr"`
		Patterns     []xsdValue `xml:"http://www.w3.org/2001/XMLSchema pattern"`
		MinInclusive *xsdValue  `xml:"http://www.w3.org/2001/XMLSchema minInclusive"`
		MaxInclusive *xsdValue  `xml:"http://www.w3.org/2001/XMLSchema maxInclusive"`
		MaxLength    *xsdValue  `xml:"http://www.w3.org/2001/XMLSchema maxLength"`
	} `xml:"http://www.w3.org/2001/XMLSchema restriction"`
}

// field is one element of the record's sequence, with its type resolved.
type field struct {
	name     string
	min, max int
	check    func(string) error
}

// schema is the compiled subset: the root element's name and its sequence.
type schema struct {
	root   xml.Name
	fields []field
}

// supported lists the XSD elements the validator understands.
var supported = map[string]bool{
	"schema": true, "element": true, "complexType": true, "sequence": true, "simpleType": true,
	"restriction": true, "pattern": true, "minInclusive": true, "maxInclusive": true, "maxLength": true,
	"annotation": true, "documentation": true,
}

func loadSchema(t *testing.T) *schema {
	t.Helper()
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := compileSchema(raw)
	if err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	return s
}

func compileSchema(raw []byte) (*schema, error) {
	// Refuse constructs outside the subset (attributes of the instance,
	// choice, all, extension, imports, …).
	dec := xml.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok && (se.Name.Space != xsdNS || !supported[se.Name.Local]) {
			return nil, fmt.Errorf("<%s:%s> is outside the subset this validator understands", se.Name.Space, se.Name.Local)
		}
	}
	var x xsdSchema
	if err := xml.Unmarshal(raw, &x); err != nil {
		return nil, err
	}
	if x.ElementFormDefault != "qualified" {
		return nil, fmt.Errorf("elementFormDefault %q, want qualified", x.ElementFormDefault)
	}
	prefixes := map[string]string{}
	for _, a := range x.Attrs {
		if a.Name.Space == "xmlns" {
			prefixes[a.Name.Local] = a.Value
		}
	}
	types := map[string]func(string) error{}
	for _, st := range x.SimpleTypes {
		check, err := compileSimpleType(st, prefixes)
		if err != nil {
			return nil, fmt.Errorf("simpleType %q: %w", st.Name, err)
		}
		types[st.Name] = check
	}
	if len(x.Elements) != 1 || x.Elements[0].ComplexType == nil || x.Elements[0].ComplexType.Sequence == nil {
		return nil, fmt.Errorf("want one global element with a complexType sequence, have %d elements", len(x.Elements))
	}
	root := x.Elements[0]
	s := &schema{root: xml.Name{Space: x.TargetNamespace, Local: root.Name}}
	for _, e := range root.ComplexType.Sequence.Elements {
		if e.ComplexType != nil {
			return nil, fmt.Errorf("element %q: nested complex types are outside the subset", e.Name)
		}
		f := field{name: e.Name, min: 1, max: 1}
		var err error
		if f.min, err = occurs(e.MinOccurs, 1); err != nil {
			return nil, fmt.Errorf("element %q minOccurs: %w", e.Name, err)
		}
		if f.max, err = occurs(e.MaxOccurs, 1); err != nil {
			return nil, fmt.Errorf("element %q maxOccurs: %w", e.Name, err)
		}
		ns, local, err := resolve(e.Type, prefixes)
		if err != nil {
			return nil, fmt.Errorf("element %q: %w", e.Name, err)
		}
		switch ns {
		case xsdNS:
			f.check = builtin[local]
		case x.TargetNamespace:
			f.check = types[local]
		}
		if f.check == nil {
			return nil, fmt.Errorf("element %q: unknown type %q", e.Name, e.Type)
		}
		s.fields = append(s.fields, f)
	}
	return s, nil
}

func occurs(v string, def int) (int, error) {
	switch v {
	case "":
		return def, nil
	case "unbounded":
		return int(^uint(0) >> 1), nil
	}
	return strconv.Atoi(v)
}

// resolve splits a QName attribute value into namespace and local name.
func resolve(qname string, prefixes map[string]string) (string, string, error) {
	prefix, local, ok := strings.Cut(qname, ":")
	if !ok {
		return "", "", fmt.Errorf("type %q has no prefix", qname)
	}
	ns, ok := prefixes[prefix]
	if !ok {
		return "", "", fmt.Errorf("prefix %q of %q is not declared", prefix, qname)
	}
	return ns, local, nil
}

// durationRE is the lexical space of xs:duration: at least one component,
// and T only with a time component after it.
var durationRE = regexp.MustCompile(`^-?P(?:[0-9]+Y)?(?:[0-9]+M)?(?:[0-9]+D)?(?:T(?:[0-9]+H)?(?:[0-9]+M)?(?:[0-9]+(?:\.[0-9]+)?S)?)?$`)

var builtin = map[string]func(string) error{
	"string": func(string) error { return nil },
	"int": func(v string) error {
		_, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		return err
	},
	"dateTime": func(v string) error {
		_, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
		return err
	},
	"duration": func(v string) error {
		v = strings.TrimSpace(v)
		if !durationRE.MatchString(v) || strings.HasSuffix(v, "P") || strings.HasSuffix(v, "T") {
			return fmt.Errorf("%q is not an xs:duration", v)
		}
		return nil
	},
}

func compileSimpleType(st xsdSimpleType, prefixes map[string]string) (func(string) error, error) {
	r := st.Restriction
	ns, local, err := resolve(r.Base, prefixes)
	if err != nil {
		return nil, err
	}
	base := builtin[local]
	if ns != xsdNS || base == nil {
		return nil, fmt.Errorf("base %q is not a supported built-in type", r.Base)
	}
	var res []*regexp.Regexp
	for _, p := range r.Patterns {
		// XSD patterns match the whole value; \- in a class is a hyphen
		// in both dialects.
		re, err := regexp.Compile(`^(?:` + p.Value + `)$`)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p.Value, err)
		}
		res = append(res, re)
	}
	bound := func(v *xsdValue) (*int64, error) {
		if v == nil {
			return nil, nil
		}
		n, err := strconv.ParseInt(v.Value, 10, 64)
		return &n, err
	}
	lo, err := bound(r.MinInclusive)
	if err != nil {
		return nil, err
	}
	hi, err := bound(r.MaxInclusive)
	if err != nil {
		return nil, err
	}
	maxLen, err := bound(r.MaxLength)
	if err != nil {
		return nil, err
	}
	if (lo != nil || hi != nil) && local != "int" {
		return nil, fmt.Errorf("bounds on %q are outside the subset", r.Base)
	}
	return func(v string) error {
		if local != "string" {
			v = strings.TrimSpace(v)
		}
		if err := base(v); err != nil {
			return err
		}
		for _, re := range res {
			if !re.MatchString(v) {
				return fmt.Errorf("%q does not match pattern %s", v, re)
			}
		}
		if lo != nil || hi != nil {
			n, _ := strconv.ParseInt(v, 10, 64)
			if (lo != nil && n < *lo) || (hi != nil && n > *hi) {
				return fmt.Errorf("%d is out of range", n)
			}
		}
		if maxLen != nil && int64(utf8.RuneCountInString(v)) > *maxLen {
			return fmt.Errorf("%q is longer than %d characters", v, *maxLen)
		}
		return nil
	}, nil
}

// validate checks an instance document against s.
func (s *schema) validate(doc []byte) error {
	type child struct {
		name xml.Name
		text string
	}
	var children []child
	dec := xml.NewDecoder(bytes.NewReader(doc))
	depth := 0
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 1:
				if tok.Name != s.root {
					return fmt.Errorf("root element %v, want %v", tok.Name, s.root)
				}
				for _, a := range tok.Attr {
					if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
						return fmt.Errorf("root element has attribute %v, which the schema does not declare", a.Name)
					}
				}
			case 2:
				if len(tok.Attr) > 0 {
					return fmt.Errorf("element %s has attributes", tok.Name.Local)
				}
				children = append(children, child{name: tok.Name})
				text.Reset()
			default:
				return fmt.Errorf("element %s inside %s: simple-typed elements have no children", tok.Name.Local, children[len(children)-1].name.Local)
			}
		case xml.CharData:
			switch depth {
			case 1:
				if strings.TrimSpace(string(tok)) != "" {
					return fmt.Errorf("text %q directly inside the root", tok)
				}
			case 2:
				text.Write(tok)
			}
		case xml.EndElement:
			if depth == 2 {
				children[len(children)-1].text = text.String()
			}
			depth--
		}
	}
	i := 0
	for _, f := range s.fields {
		n := 0
		for i < len(children) && children[i].name == (xml.Name{Space: s.root.Space, Local: f.name}) && n < f.max {
			if err := f.check(children[i].text); err != nil {
				return fmt.Errorf("element %s: %w", f.name, err)
			}
			i++
			n++
		}
		if n < f.min {
			return fmt.Errorf("element %s is missing (or out of order)", f.name)
		}
	}
	if i < len(children) {
		return fmt.Errorf("unexpected element %v at position %d", children[i].name, i+1)
	}
	return nil
}

// xmllint validates doc with xmllint when it is installed; it returns false
// when it is not.
func xmllint(t *testing.T, doc []byte) (bool, error) {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		return false, nil
	}
	path := filepath.Join(t.TempDir(), "sample.xml")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--noout", "--schema", schemaPath, path).CombinedOutput()
	if err != nil {
		return true, fmt.Errorf("%v: %s", err, out)
	}
	return true, nil
}

// validDocs returns the golden samples and records of more sessions.
func validDocs(t *testing.T) map[string][]byte {
	t.Helper()
	docs := map[string][]byte{}
	files, err := filepath.Glob(filepath.Join("testdata", "completed-session-*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden samples: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[filepath.Base(f)] = b
	}
	start := time.Date(2026, 1, 1, 23, 59, 59, 0, time.UTC)
	for i, d := range []time.Duration{0, time.Second, 59 * time.Minute, 25 * time.Hour, 1000*time.Hour + 1} {
		sess := policy.Session{ID: fmt.Sprintf("s-%d", i), AccountID: "a", RepresentativeID: "r", CustomerID: "c", PortalID: "p",
			StartTime: start, EndTime: start.Add(d), CustomerRating: int32(i % 6), RepresentativeRating: int32(5 - i%6)}
		doc, err := notify.Marshal(&sess, &policy.Portal{Name: "  spaces\tand\nlines  "}, &policy.Representative{DisplayName: "名前"})
		if err != nil {
			t.Fatal(err)
		}
		docs[fmt.Sprintf("generated duration %v", d)] = doc
	}
	return docs
}

func TestSchema_SamplesValidate(t *testing.T) {
	s := loadSchema(t)
	if len(s.fields) < 10 {
		t.Fatalf("schema has %d fields; did it parse?", len(s.fields))
	}
	for name, doc := range validDocs(t) {
		t.Run(name, func(t *testing.T) {
			if err := s.validate(doc); err != nil {
				t.Errorf("%v\n%s", err, doc)
			}
			t.Run("xmllint", func(t *testing.T) {
				ran, err := xmllint(t, doc)
				if !ran {
					t.Skip("xmllint is not installed; checked by the built-in subset validator only")
				}
				if err != nil {
					t.Error(err)
				}
			})
		})
	}
}

// TestSchema_RejectsInvalid shows that the validators catch what the
// schema forbids, so a passing sample means something.
func TestSchema_RejectsInvalid(t *testing.T) {
	s := loadSchema(t)
	good, err := os.ReadFile(filepath.Join("testdata", "completed-session-full.xml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(good)
	for name, edit := range map[string]func(string) string{
		"missing required element": func(d string) string {
			return strings.Replace(d, "  <customerId>cust-42</customerId>\n", "", 1)
		},
		"elements out of order": func(d string) string {
			return strings.Replace(d, "  <sessionId>s-abcdefghijklmnop</sessionId>\n  <accountId>acme</accountId>\n",
				"  <accountId>acme</accountId>\n  <sessionId>s-abcdefghijklmnop</sessionId>\n", 1)
		},
		"unknown element": func(d string) string {
			return strings.Replace(d, "  <duration>", "  <notes>x</notes>\n  <duration>", 1)
		},
		"element repeated": func(d string) string {
			return strings.Replace(d, "  <duration>", "  <endTime>2026-03-14T10:28:56Z</endTime>\n  <duration>", 1)
		},
		"rating out of range": func(d string) string { return strings.Replace(d, "<customerRating>4<", "<customerRating>6<", 1) },
		"rating not a number": func(d string) string { return strings.Replace(d, "<customerRating>4<", "<customerRating>four<", 1) },
		"bad dateTime":        func(d string) string { return strings.Replace(d, "2026-03-14T09:26:53Z", "2026-03-14 09:26:53", 1) },
		"bad duration":        func(d string) string { return strings.Replace(d, "PT1H2M3S", "1:02:03", 1) },
		"empty duration":      func(d string) string { return strings.Replace(d, "PT1H2M3S", "PT", 1) },
		"id not a slug":       func(d string) string { return strings.Replace(d, "<accountId>acme<", "<accountId>Acme Inc<", 1) },
		"wrong namespace":     func(d string) string { return strings.Replace(d, notify.Namespace, "urn:other", 1) },
		"unqualified children": func(d string) string {
			d = strings.Replace(d, `<completedSession xmlns="`, `<cs:completedSession xmlns:cs="`, 1)
			return strings.Replace(d, "</completedSession>", "</cs:completedSession>", 1)
		},
		"nested element":         func(d string) string { return strings.Replace(d, "<customerId>cust-42<", "<customerId><b>x</b><", 1) },
		"undeclared attribute":   func(d string) string { return strings.Replace(d, "<sessionId>", `<sessionId kind="x">`, 1) },
		"text between elements":  func(d string) string { return strings.Replace(d, "  <duration>", "  stray\n  <duration>", 1) },
		"rating given as a zero": func(d string) string { return strings.Replace(d, "<customerRating>4<", "<customerRating>0<", 1) },
	} {
		t.Run(name, func(t *testing.T) {
			bad := edit(doc)
			if bad == doc {
				t.Fatal("the edit changed nothing")
			}
			if err := s.validate([]byte(bad)); err == nil {
				t.Errorf("subset validator accepted\n%s", bad)
			}
			t.Run("xmllint", func(t *testing.T) {
				ran, err := xmllint(t, []byte(bad))
				if !ran {
					t.Skip("xmllint is not installed; checked by the built-in subset validator only")
				}
				if err == nil {
					t.Errorf("xmllint accepted\n%s", bad)
				}
			})
		})
	}
}

// TestSchema_SubsetIsEnforced checks that the validator refuses schemas
// it does not fully understand instead of passing everything.
func TestSchema_SubsetIsEnforced(t *testing.T) {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(string) string{
		"choice": func(x string) string { return strings.Replace(x, "<xs:sequence>", "<xs:choice>", 1) },
		"attribute": func(x string) string {
			return strings.Replace(x, "</xs:sequence>", "</xs:sequence><xs:attribute name=\"v\" type=\"xs:int\"/>", 1)
		},
		"unknown type": func(x string) string { return strings.Replace(x, `type="xs:duration"`, `type="xs:gYear"`, 1) },
		"unknown facet": func(x string) string {
			return strings.Replace(x, `<xs:minInclusive value="1"/>`, `<xs:totalDigits value="1"/>`, 1)
		},
		"unqualified":    func(x string) string { return strings.Replace(x, `elementFormDefault="qualified"`, ``, 1) },
		"undeclared ref": func(x string) string { return strings.Replace(x, `type="cs:rating"`, `type="zz:rating"`, 1) },
	} {
		t.Run(name, func(t *testing.T) {
			changed := edit(string(raw))
			if changed == string(raw) {
				t.Fatal("the edit changed nothing")
			}
			if _, err := compileSchema([]byte(changed)); err == nil {
				t.Error("compileSchema accepted a schema outside the subset")
			}
		})
	}
}
