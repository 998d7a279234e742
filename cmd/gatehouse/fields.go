package main

import (
	"fmt"
	"slices"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fieldSpec binds a flag to a field of a resource message. The flag's
// type follows the field: string, bool, enum (by name), the support
// functions (--function name=bool, repeated), weekly windows and holidays
// (repeated, in the syntax of syntax.go).
type fieldSpec struct {
	flag  string
	field string
	usage string
}

var (
	weeklyDesc    = (&gatehousev1.WeeklyWindow{}).ProtoReflect().Descriptor()
	holidayDesc   = (&gatehousev1.Holiday{}).ProtoReflect().Descriptor()
	functionsFull = functionsDesc.FullName()
)

// bindFields adds the flags of specs to cmd.
func bindFields(cmd *cobra.Command, md protoreflect.MessageDescriptor, specs []fieldSpec) {
	fs := cmd.Flags()
	for _, s := range specs {
		fd := md.Fields().ByName(protoreflect.Name(s.field))
		if fd == nil {
			panic(fmt.Sprintf("%s has no field %s", md.FullName(), s.field))
		}
		switch {
		case fd.Kind() == protoreflect.MessageKind:
			fs.StringArray(s.flag, nil, s.usage)
			if fd.Message().FullName() == functionsFull {
				_ = cmd.RegisterFlagCompletionFunc(s.flag, completeFunctions)
			}
		case fd.Kind() == protoreflect.BoolKind:
			fs.Bool(s.flag, false, s.usage)
		case fd.Kind() == protoreflect.Uint32Kind:
			fs.Uint32(s.flag, 0, s.usage)
		case fd.Kind() == protoreflect.EnumKind:
			fs.String(s.flag, "", s.usage+" ("+strings.Join(enumChoices(fd.Enum()), ", ")+")")
			_ = cmd.RegisterFlagCompletionFunc(s.flag, cobra.FixedCompletions(enumChoices(fd.Enum()), cobra.ShellCompDirectiveNoFileComp))
		case fd.Kind() == protoreflect.StringKind:
			fs.String(s.flag, "", s.usage)
		default:
			panic(fmt.Sprintf("%s.%s: no flag type for %s fields", md.FullName(), s.field, fd.Kind()))
		}
		setsField(cmd, s.flag, s.field)
	}
}

func completeFunctions(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, n := range append(functionNames(), "all") {
		out = append(out, n+"=true", n+"=false")
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// applyFields copies the flags of specs that were given onto m and
// returns the update-mask paths they set (functions.<name> for each
// function given, so the others are left alone).
func applyFields(fs *pflag.FlagSet, specs []fieldSpec, m proto.Message) ([]string, error) {
	r := m.ProtoReflect()
	var paths []string
	add := func(p string) {
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	for _, s := range specs {
		if !fs.Changed(s.flag) {
			continue
		}
		fd := r.Descriptor().Fields().ByName(protoreflect.Name(s.field))
		switch {
		case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == functionsFull:
			vals, _ := fs.GetStringArray(s.flag)
			fm := r.Mutable(fd).Message()
			for _, v := range vals {
				names, on, err := parseFunction(v)
				if err != nil {
					return nil, usageError{fmt.Errorf("--%s: %w", s.flag, err)}
				}
				for _, n := range names {
					fm.Set(functionsDesc.Fields().ByName(protoreflect.Name(n)), protoreflect.ValueOfBool(on))
					add(s.field + "." + n)
				}
			}
		case fd.IsList():
			vals, _ := fs.GetStringArray(s.flag)
			l := r.Mutable(fd).List()
			add(s.field)
			if len(vals) == 1 && vals[0] == "none" {
				r.Clear(fd)
				continue
			}
			for _, v := range vals {
				var elems []proto.Message
				switch fd.Message().FullName() {
				case weeklyDesc.FullName():
					ws, err := parseWindows(v)
					if err != nil {
						return nil, usageError{fmt.Errorf("--%s: %w", s.flag, err)}
					}
					for _, w := range ws {
						elems = append(elems, w)
					}
				case holidayDesc.FullName():
					h, err := parseHoliday(v)
					if err != nil {
						return nil, usageError{fmt.Errorf("--%s: %w", s.flag, err)}
					}
					elems = append(elems, h)
				}
				for _, e := range elems {
					l.Append(protoreflect.ValueOfMessage(e.ProtoReflect()))
				}
			}
		case fd.Kind() == protoreflect.BoolKind:
			b, _ := fs.GetBool(s.flag)
			r.Set(fd, protoreflect.ValueOfBool(b))
			add(s.field)
		case fd.Kind() == protoreflect.Uint32Kind:
			n, _ := fs.GetUint32(s.flag)
			r.Set(fd, protoreflect.ValueOfUint32(n))
			add(s.field)
		case fd.Kind() == protoreflect.EnumKind:
			v, _ := fs.GetString(s.flag)
			n, err := parseEnum(fd.Enum(), v)
			if err != nil {
				return nil, usageError{fmt.Errorf("--%s: %w", s.flag, err)}
			}
			r.Set(fd, protoreflect.ValueOfEnum(n))
			add(s.field)
		default:
			v, _ := fs.GetString(s.flag)
			r.Set(fd, protoreflect.ValueOfString(v))
			add(s.field)
		}
	}
	return paths, nil
}

// setString sets a string field of m by name.
func setString(m proto.Message, field, v string) {
	r := m.ProtoReflect()
	r.Set(r.Descriptor().Fields().ByName(protoreflect.Name(field)), protoreflect.ValueOfString(v))
}

// getString reads a string field of m by name.
func getString(m protoreflect.Message, field string) string {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(field))
	if fd == nil || fd.Kind() != protoreflect.StringKind {
		return ""
	}
	return m.Get(fd).String()
}

func flagNames(specs []fieldSpec) string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = "--" + s.flag
	}
	return strings.Join(names, ", ")
}
