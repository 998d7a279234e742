package server

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// applyMask copies the fields named by mask from src to dst (messages of the
// same type), following aip.dev/134: an empty mask means every mutable
// field; a path may name a field inside a singular message field
// ("functions.send_files"), which leaves that message's other fields alone.
// Paths outside mutable, unknown or malformed are field violations of
// "update_mask"; nothing is copied unless every path is valid.
func applyMask(dst, src proto.Message, mask *fieldmaskpb.FieldMask, mutable []string) error {
	paths := mask.GetPaths()
	if len(paths) == 0 {
		paths = mutable
	}
	var v violations
	for i, p := range paths {
		if err := checkPath(dst.ProtoReflect().Descriptor(), p, mutable); err != "" {
			v.add(fmt.Sprintf("update_mask.paths[%d]", i), "%q: %s", p, err)
		}
	}
	if err := v.err(); err != nil {
		return err
	}
	for _, p := range paths {
		parts := strings.Split(p, ".")
		dm, sm := dst.ProtoReflect(), src.ProtoReflect()
		for _, name := range parts[:len(parts)-1] {
			fd := dm.Descriptor().Fields().ByName(protoreflect.Name(name))
			dm, sm = dm.Mutable(fd).Message(), sm.Get(fd).Message()
		}
		fd := dm.Descriptor().Fields().ByName(protoreflect.Name(parts[len(parts)-1]))
		if sm.Has(fd) {
			dm.Set(fd, sm.Get(fd))
		} else {
			dm.Clear(fd)
		}
	}
	return nil
}

// checkPath returns why p is not an updatable path, or "".
func checkPath(md protoreflect.MessageDescriptor, p string, mutable []string) string {
	parts := strings.Split(p, ".")
	if !slices.Contains(mutable, parts[0]) {
		return fmt.Sprintf("not an updatable field (updatable: %s)", strings.Join(mutable, ", "))
	}
	for i, name := range parts {
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return fmt.Sprintf("no field %q in %s", name, md.Name())
		}
		if i < len(parts)-1 {
			if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
				return fmt.Sprintf("%q has no subfields", name)
			}
			md = fd.Message()
		}
	}
	return ""
}
