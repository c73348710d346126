// Package handover passes a protobuf message's contents from sender to receiver inside
// one process without copying them, as gRPC's contract allows: a sender does not touch
// a message once sent (grpc.ClientStream.SendMsg). The edge's in-process REST pipe and
// dev's in-process channel to the services both rely on it.
package handover

import "google.golang.org/protobuf/reflect/protoreflect"

// Fields sets on dst every field src has set, and src's unknown bytes, sharing their
// values (lists, maps, messages and byte slices are not copied). dst must be of src's
// type and should be empty: fields src does not set are left as they are.
func Fields(dst, src protoreflect.Message) {
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	if u := src.GetUnknown(); len(u) > 0 {
		dst.SetUnknown(u)
	}
}
