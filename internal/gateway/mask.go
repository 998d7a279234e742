package gateway

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// maskConn is the gateway's connection to the server. On a PATCH without
// an update_mask, grpc-gateway derives the mask from the fields the body
// holds; maskConn keeps of it only the fields the RPC may update
// (server.UpdatableFields), dropping those that identify, version or
// describe the resource rather than change it — its etag and revision,
// the fields the URL path binds (id, account_id, language), output-only
// fields such as create_time — so that a body read by GET, edited and
// sent back updates what it changed. A body that names no field to change
// is refused: an empty mask would mean "every field".
type maskConn struct {
	grpc.ClientConnInterface
	g *Gateway
}

func (c maskConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if st, ok := ctx.Value(bodyStateKey).(*bodyState); ok && st.read == 0 {
		if msg, ok := args.(proto.Message); ok {
			clearEmptyMessages(msg.ProtoReflect())
		}
	}
	if auto, _ := ctx.Value(autoMaskKey).(bool); auto {
		if msg, ok := args.(proto.Message); ok {
			if err := trimDerivedMask(ctx, msg.ProtoReflect(), server.UpdatableFields(method)); err != nil {
				c.g.refused.WithLabelValues(reasonNoUpdateFields).Inc()
				return err
			}
		}
	}
	return c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
}

// clearEmptyMessages unsets the message fields of req that hold nothing.
// grpc-gateway decodes a missing body into an empty message; cleared, a
// request without a body reads as the same request over gRPC without
// that field ("account: is required" rather than a complaint about one
// of its fields).
func clearEmptyMessages(req protoreflect.Message) {
	fields := req.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Message() != nil && !fd.IsList() && !fd.IsMap() && req.Has(fd) && proto.Size(req.Get(fd).Message().Interface()) == 0 {
			req.Clear(fd)
		}
	}
}

// versionFields are resource fields that never count as a change in a
// derived update mask.
var versionFields = []string{"etag", "revision"}

var pathParam = regexp.MustCompile(`\{([^}=]+)`)

// trimDerivedMask trims req's update_mask, derived from the body, as
// maskConn says; with updatable known, it also keeps only the paths that
// start with one of them.
func trimDerivedMask(ctx context.Context, req protoreflect.Message, updatable []string) error {
	fields := req.Descriptor().Fields()
	maskFD := fields.ByName("update_mask")
	if maskFD == nil || maskFD.Message() == nil || maskFD.Message().FullName() != "google.protobuf.FieldMask" {
		return nil
	}
	// The resource is the request's other message field: the body.
	var resource string
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd != maskFD && fd.Message() != nil && !fd.IsList() && !fd.IsMap() {
			resource = string(fd.Name())
		}
	}
	drop := slices.Clone(versionFields)
	if pattern, ok := runtime.HTTPPathPattern(ctx); ok {
		for _, m := range pathParam.FindAllStringSubmatch(pattern, -1) {
			if rest, ok := strings.CutPrefix(m[1], resource+"."); ok {
				drop = append(drop, rest)
			}
		}
	}
	mask, _ := req.Get(maskFD).Message().Interface().(*fieldmaskpb.FieldMask)
	var kept []string
	for _, p := range mask.GetPaths() {
		top, _, _ := strings.Cut(p, ".")
		if !slices.Contains(drop, p) && (updatable == nil || slices.Contains(updatable, top)) {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		st, _ := status.New(codes.InvalidArgument, "the request body names no field to change").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "update_mask",
				Description: "send the fields to change in the body (with the etag read), or name them in the update_mask query parameter"}}})
		return st.Err()
	}
	req.Set(maskFD, protoreflect.ValueOfMessage((&fieldmaskpb.FieldMask{Paths: kept}).ProtoReflect()))
	return nil
}
