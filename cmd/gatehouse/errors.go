package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
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
func renderError(w io.Writer, err error, a *app) {
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
	fmt.Fprintf(w, "Error: %s%s: %s\n", where, codeName(st.Code()), st.Message())
	for _, d := range st.Details() {
		switch x := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range x.GetFieldViolations() {
				fmt.Fprintf(w, "  field %s: %s\n", v.GetField(), v.GetDescription())
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
		fmt.Fprintf(w, "  hint: pass a bearer token with --token or --token-file, or set %s\n", envToken)
	}
}
