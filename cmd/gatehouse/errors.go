package main

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// codeName is a gRPC code as the API docs spell it (INVALID_ARGUMENT).
func codeName(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// renderError writes err readably: for a gRPC status its code, message,
// field violations, ErrorInfo reason and metadata and any other detail,
// plus a hint for the usual connection and credential mistakes.
func renderError(w io.Writer, err error, a *app, cmd *cobra.Command) {
	var gs interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &gs) || gs.GRPCStatus() == nil || gs.GRPCStatus().Code() == codes.OK {
		fmt.Fprintf(w, "Error: %v\n", err)
		if isUsage(err) {
			fmt.Fprintln(w, "Run with --help for usage.")
		}
		return
	}
	st := gs.GRPCStatus()
	// A step of a longer command (import) says which resource failed.
	where := ""
	var se *stepError
	if errors.As(err, &se) {
		where = se.what + ": "
	}
	fmt.Fprintf(w, "Error: %s%s: %s\n", where, codeName(st.Code()), withoutViolation(st))
	for _, d := range st.Details() {
		switch x := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range x.GetFieldViolations() {
				field, desc := v.GetField(), v.GetDescription()
				if flag := flagFor(cmd, field); flag != "" {
					field += " (--" + flag + ")"
					desc = cliEnumNames(desc)
				}
				fmt.Fprintf(w, "  field %s: %s\n", field, desc)
			}
		case *errdetails.ErrorInfo:
			fmt.Fprintf(w, "  reason: %s", x.GetReason())
			if x.GetDomain() != "" {
				fmt.Fprintf(w, " (%s)", x.GetDomain())
			}
			fmt.Fprintln(w)
			keys := make([]string, 0, len(x.GetMetadata()))
			for k := range x.GetMetadata() {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "  %s: %s\n", k, x.GetMetadata()[k])
			}
		case *errdetails.PreconditionFailure:
			for _, v := range x.GetViolations() {
				fmt.Fprintf(w, "  precondition %s %s: %s\n", v.GetType(), v.GetSubject(), v.GetDescription())
			}
		case *errdetails.RetryInfo:
			fmt.Fprintf(w, "  retry after: %s\n", x.GetRetryDelay().AsDuration())
		case *errdetails.QuotaFailure:
			for _, v := range x.GetViolations() {
				fmt.Fprintf(w, "  quota %s: %s\n", v.GetSubject(), v.GetDescription())
			}
		case *errdetails.ResourceInfo:
			fmt.Fprintf(w, "  resource: %s %s\n", x.GetResourceType(), x.GetResourceName())
		case *errdetails.RequestInfo:
			fmt.Fprintf(w, "  request id: %s\n", x.GetRequestId())
		case proto.Message:
			fmt.Fprintf(w, "  %s: %s\n", x.ProtoReflect().Descriptor().FullName(), formatMessage(x.ProtoReflect()))
		default:
			fmt.Fprintf(w, "  detail: %v\n", x)
		}
	}
	switch st.Code() {
	case codes.Unavailable:
		fmt.Fprintf(w, "  hint: is gatehoused serving on %s? (--addr or %s)\n", a.addr, envAddr)
	case codes.Unauthenticated:
		if a.bearerFrom == "" {
			fmt.Fprintf(w, "  hint: pass a bearer token with --token or --token-file, or set %s\n", envToken)
		} else {
			fmt.Fprintf(w, "  hint: the server refused the token from %s\n", a.bearerFrom)
		}
	}
}

// withoutViolation is the status message without the field violation the
// server repeats in it ("invalid request: rule.kind: is required"), which
// the violation lines show anyway.
func withoutViolation(st *status.Status) string {
	msg := st.Message()
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if t, ok := strings.CutSuffix(msg, ": "+v.GetField()+": "+v.GetDescription()); ok {
					return t
				}
			}
		}
	}
	return msg
}

// fieldAnnotation names, on a flag, the request field it sets.
const fieldAnnotation = "gatehouse_field"

// setsField records that the flag of cmd sets the request field (a dotted
// path such as "actor.id"), for error messages.
func setsField(cmd *cobra.Command, flag, field string) {
	_ = cmd.Flags().SetAnnotation(flag, fieldAnnotation, []string{field})
}

// flagFor returns the flag of cmd that sets the field a violation names:
// one annotated with that field (a resource field matches under its
// message, "kind" for "rule.kind"), else one named like the field's last
// part ("display_name" → --display-name, "customer_id" → --customer); ""
// when none does.
func flagFor(cmd *cobra.Command, field string) string {
	if cmd == nil {
		return ""
	}
	found := ""
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		for _, fd := range f.Annotations[fieldAnnotation] {
			if found == "" && (field == fd || strings.HasSuffix(field, "."+fd)) {
				found = f.Name
			}
		}
	})
	if found != "" {
		return found
	}
	last := field[strings.LastIndexByte(field, '.')+1:]
	for _, name := range []string{last, strings.TrimSuffix(last, "_id")} {
		if f := cmd.Flags().Lookup(strings.ReplaceAll(name, "_", "-")); f != nil && f.Annotations[fieldAnnotation] == nil {
			return f.Name
		}
	}
	return ""
}

// cliEnums are the enums whose values flags take.
var cliEnums = []protoreflect.EnumDescriptor{sessionKindDesc, roleDesc, featureDesc, frameDesc, callerRoleDesc,
	gatehousev1.PrivacyRuleKind(0).Descriptor(), gatehousev1.Weekday(0).Descriptor()}

var enumValueName = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(_[A-Z0-9]+)+\b`)

// cliEnumNames spells the enum values in a server message as the flags
// take them: PRIVACY_RULE_KIND_BUTTON_BLOCK → button_block.
func cliEnumNames(s string) string {
	return enumValueName.ReplaceAllStringFunc(s, func(name string) string {
		for _, ed := range cliEnums {
			if v := ed.Values().ByName(protoreflect.Name(name)); v != nil && v.Number() != 0 {
				return strings.ToLower(strings.TrimPrefix(name, enumPrefix(ed)))
			}
		}
		return name
	})
}
