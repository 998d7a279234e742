package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// This file holds the small flag syntaxes of the CLI and their inverse
// renderings for tables: enum values, support functions, weekly windows,
// holidays and page elements.

// parseEnum reads an enum value by its name with or without the type
// prefix, in any case, with '-' for '_': for Feature, "click", "CLICK",
// "FEATURE_CLICK" and "send-files" all work. The UNSPECIFIED value is
// refused.
func parseEnum(ed protoreflect.EnumDescriptor, s string) (protoreflect.EnumNumber, error) {
	prefix := enumPrefix(ed)
	norm := strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(strings.TrimSpace(s)))
	for _, name := range []string{norm, prefix + norm} {
		if v := ed.Values().ByName(protoreflect.Name(name)); v != nil && v.Number() != 0 {
			return v.Number(), nil
		}
	}
	return 0, fmt.Errorf("%q is not one of %s%s", s, strings.Join(enumChoices(ed), ", "), didYouMean(strings.TrimPrefix(norm, prefix), enumChoices(ed)))
}

// enumChoices lists an enum's values as the CLI spells them.
func enumChoices(ed protoreflect.EnumDescriptor) []string {
	prefix := enumPrefix(ed)
	var out []string
	for i := 1; i < ed.Values().Len(); i++ {
		out = append(out, strings.ToLower(strings.TrimPrefix(string(ed.Values().Get(i).Name()), prefix)))
	}
	return out
}

var functionsDesc = (&gatehousev1.SupportFunctions{}).ProtoReflect().Descriptor()

// functionNames are the twelve support functions in field order.
func functionNames() []string {
	fields := functionsDesc.Fields()
	out := make([]string, fields.Len())
	for i := range out {
		out[i] = string(fields.Get(i).Name())
	}
	return out
}

// parseFunction reads "name[=bool]" ("send_files", "send-files=false",
// "all=true"); it returns the function names it sets and the value.
func parseFunction(s string) ([]string, bool, error) {
	name, val, hasVal := strings.Cut(strings.TrimSpace(s), "=")
	name = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), "-", "_"))
	on := true
	if hasVal {
		b, err := strconv.ParseBool(strings.TrimSpace(val))
		if err != nil {
			return nil, false, fmt.Errorf("function %q: value %q is not true or false", name, val)
		}
		on = b
	}
	if name == "all" {
		return functionNames(), on, nil
	}
	if functionsDesc.Fields().ByName(protoreflect.Name(name)) == nil {
		return nil, false, fmt.Errorf("no support function %q (functions: %s, or all)%s", name, strings.Join(functionNames(), ", "), didYouMean(name, append(functionNames(), "all")))
	}
	return []string{name}, on, nil
}

// formatFunctions lists the functions that are on: "all", "none",
// "send_files,receive_files" or, when most are on, "all but annotations".
func formatFunctions(f *gatehousev1.SupportFunctions) string {
	r := f.ProtoReflect()
	var on, off []string
	fields := functionsDesc.Fields()
	for i := 0; i < fields.Len(); i++ {
		if r.Get(fields.Get(i)).Bool() {
			on = append(on, string(fields.Get(i).Name()))
		} else {
			off = append(off, string(fields.Get(i).Name()))
		}
	}
	switch {
	case len(on) == 0:
		return "none"
	case len(off) == 0:
		return "all"
	case len(off) < len(on):
		return "all but " + strings.Join(off, ",")
	}
	return strings.Join(on, ",")
}

var weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// parseWeekday reads "mon", "Monday", "MONDAY" or "weekday_monday".
func parseWeekday(s string) (gatehousev1.Weekday, error) {
	t := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "weekday_")
	for i, d := range weekdays {
		full := strings.ToLower(gatehousev1.Weekday(i + 1).String()[len("WEEKDAY_"):])
		if t == d || t == full {
			return gatehousev1.Weekday(i + 1), nil
		}
	}
	return 0, fmt.Errorf("%q is not a weekday (mon … sun)", s)
}

var (
	hhmm     = regexp.MustCompile(`^\d{2}:\d{2}$`)
	isoDate  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	errRange = errors.New(`want "HH:MM-HH:MM"`)
)

// parseRange reads "09:00-17:00" (the server validates the times).
func parseRange(s string) (start, end string, err error) {
	start, end, ok := strings.Cut(s, "-")
	if !ok || !hhmm.MatchString(start) || !hhmm.MatchString(end) {
		return "", "", errRange
	}
	return start, end, nil
}

// parseWindows reads "DAYS HH:MM-HH:MM", where DAYS is a day ("mon"), a
// range ("mon-fri") or a comma list ("mon,wed,sat"); it returns one window
// per day.
func parseWindows(s string) ([]*gatehousev1.WeeklyWindow, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return nil, fmt.Errorf(`window %q: want "DAYS HH:MM-HH:MM", e.g. "mon-fri 09:00-17:00"`, s)
	}
	start, end, err := parseRange(f[1])
	if err != nil {
		return nil, fmt.Errorf("window %q: %w", s, err)
	}
	var days []gatehousev1.Weekday
	for _, part := range strings.Split(f[0], ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, err := parseWeekday(from)
		if err != nil {
			return nil, fmt.Errorf("window %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = parseWeekday(to); err != nil {
				return nil, fmt.Errorf("window %q: %w", s, err)
			}
		}
		for d := a; ; d = d%7 + 1 {
			days = append(days, d)
			if d == b {
				break
			}
		}
	}
	out := make([]*gatehousev1.WeeklyWindow, len(days))
	for i, d := range days {
		out[i] = &gatehousev1.WeeklyWindow{Day: d, Start: start, End: end}
	}
	return out, nil
}

func formatWindow(w *gatehousev1.WeeklyWindow) string {
	day := "?"
	if d := int(w.GetDay()); d >= 1 && d <= 7 {
		day = weekdays[d-1]
	}
	return day + " " + w.GetStart() + "-" + w.GetEnd()
}

// parseHoliday reads "YYYY-MM-DD closed [NAME…]" or
// "YYYY-MM-DD HH:MM-HH:MM [NAME…]".
func parseHoliday(s string) (*gatehousev1.Holiday, error) {
	f := strings.Fields(s)
	if len(f) < 2 || !isoDate.MatchString(f[0]) {
		return nil, fmt.Errorf(`holiday %q: want "YYYY-MM-DD closed [NAME]" or "YYYY-MM-DD HH:MM-HH:MM [NAME]"`, s)
	}
	h := &gatehousev1.Holiday{Date: f[0], Name: strings.Join(f[2:], " ")}
	if strings.EqualFold(f[1], "closed") {
		h.Closed = true
		return h, nil
	}
	start, end, err := parseRange(f[1])
	if err != nil {
		return nil, fmt.Errorf(`holiday %q: want "closed" or "HH:MM-HH:MM"`, s)
	}
	h.Start, h.End = start, end
	return h, nil
}

func formatHoliday(h *gatehousev1.Holiday) string {
	s := h.GetDate() + " "
	if h.GetClosed() {
		s += "closed"
	} else {
		s += h.GetStart() + "-" + h.GetEnd()
	}
	if h.GetName() != "" {
		s += " " + h.GetName()
	}
	return s
}

// parseElement reads the element acted on and its ancestors:
//
//	html > body > form#checkout > button.pay.primary#submit[name=x][data-role="buy now"]
//
// Nodes are separated by '>', outermost first; the last node is the
// element itself and the ones before it are its ancestors down to its
// parent. Each node is an optional tag followed by any of #id, .class and
// [attribute] or [attribute=value] (the value optionally in '…' or "…").
func parseElement(s string) (*gatehousev1.Element, error) {
	nodes, err := splitNodes(s)
	if err != nil {
		return nil, fmt.Errorf("element %q: %w", s, err)
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("element %q: empty", s)
	}
	el := &gatehousev1.Element{}
	for i, raw := range nodes {
		n, err := parseNode(raw)
		if err != nil {
			return nil, fmt.Errorf("element %q: %w", s, err)
		}
		if i == len(nodes)-1 {
			el.Tag, el.Id, el.Classes, el.Attributes = n.GetTag(), n.GetId(), n.GetClasses(), n.GetAttributes()
		} else {
			el.Ancestors = append(el.Ancestors, n)
		}
	}
	return el, nil
}

// splitNodes splits at '>' outside brackets and quotes.
func splitNodes(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	depth, quote := 0, rune(0)
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			if depth == 0 {
				return nil, errors.New("quotes belong inside [attribute=value]")
			}
			quote = r
		case r == '[':
			depth++
		case r == ']':
			depth--
		case r == '>' && depth == 0:
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	if quote != 0 || depth != 0 {
		return nil, errors.New("unclosed [ or quote")
	}
	out = append(out, strings.TrimSpace(cur.String()))
	for _, n := range out {
		if n == "" {
			return nil, errors.New("empty node between '>'")
		}
	}
	return out, nil
}

func isNameChar(c byte) bool {
	return c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// parseNode reads one compound node: tag#id.class[attr=value].
func parseNode(s string) (*gatehousev1.ElementNode, error) {
	n := &gatehousev1.ElementNode{}
	name := func(i int) (string, int) {
		j := i
		for j < len(s) && isNameChar(s[j]) {
			j++
		}
		return s[i:j], j
	}
	var i int
	n.Tag, i = name(0)
	for i < len(s) {
		switch s[i] {
		case '#', '.':
			v, j := name(i + 1)
			if v == "" {
				return nil, fmt.Errorf("%q: empty name after %q", s, s[i])
			}
			if s[i] == '#' {
				n.Id = v
			} else {
				n.Classes = append(n.Classes, v)
			}
			i = j
		case '[':
			end, key, val, err := parseAttr(s, i)
			if err != nil {
				return nil, err
			}
			if n.Attributes == nil {
				n.Attributes = map[string]string{}
			}
			n.Attributes[key] = val
			i = end
		default:
			return nil, fmt.Errorf("%q: unexpected %q at %d (want #id, .class or [attr=value])", s, s[i], i)
		}
	}
	if n.Tag == "" && n.Id == "" && len(n.Classes) == 0 && len(n.Attributes) == 0 {
		return nil, fmt.Errorf("%q: empty node", s)
	}
	return n, nil
}

// parseAttr reads [key] or [key=value] starting at s[i] == '['.
func parseAttr(s string, i int) (end int, key, val string, err error) {
	j := i + 1
	for j < len(s) && s[j] != '=' && s[j] != ']' {
		j++
	}
	key = strings.TrimSpace(s[i+1 : j])
	if key == "" || j == len(s) {
		return 0, "", "", fmt.Errorf("%q: bad attribute at %d", s, i)
	}
	if s[j] == ']' {
		return j + 1, key, "", nil
	}
	j++ // past '='
	if j < len(s) && (s[j] == '"' || s[j] == '\'') {
		q := s[j]
		k := strings.IndexByte(s[j+1:], q)
		if k < 0 {
			return 0, "", "", fmt.Errorf("%q: unclosed quote", s)
		}
		val = s[j+1 : j+1+k]
		j += k + 2
		if j >= len(s) || s[j] != ']' {
			return 0, "", "", fmt.Errorf("%q: want ] after the quoted value", s)
		}
		return j + 1, key, val, nil
	}
	k := strings.IndexByte(s[j:], ']')
	if k < 0 {
		return 0, "", "", fmt.Errorf("%q: unclosed [", s)
	}
	return j + k + 1, key, s[j : j+k], nil
}

// formatNode renders an element node in the syntax parseNode reads.
func formatNode(tag, id string, classes []string, attrs map[string]string) string {
	var b strings.Builder
	b.WriteString(tag)
	if id != "" {
		b.WriteString("#" + id)
	}
	for _, c := range classes {
		b.WriteString("." + c)
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString("[" + k)
		if v := attrs[k]; v != "" {
			b.WriteString("=" + strconv.Quote(v))
		}
		b.WriteString("]")
	}
	return b.String()
}

// parseSet reads "field=value".
func parseSet(s string) (field, value string, err error) {
	field, value, ok := strings.Cut(s, "=")
	field = strings.TrimSpace(field)
	if !ok || field == "" {
		return "", "", fmt.Errorf("--set %q: want field=value", s)
	}
	return field, value, nil
}
