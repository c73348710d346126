package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/backplane/backplane/internal/validation"
)

// A request body that does not decode reaches the error handler only as text:
// grpc-gateway's generated code wraps the decoder's error in a status of its own, from
// a reader of its own. So the body is kept as it is read, and the error handler decodes
// it again when a call fails with INVALID_ARGUMENT: if the body does not decode, it
// answers with a BadRequest naming the field, instead of protojson's wording ("proto:
// (line 1:69): unknown field ...").

// keptBodyBytes bounds the copy of a body kept for describing it: JSON bodies of this
// API are far smaller, and a larger body that does not decode is answered without a
// field name.
const keptBodyBytes = 256 << 10

// keptBody is the request body as read so far, up to keptBodyBytes.
type keptBody struct {
	io.ReadCloser
	mu       sync.Mutex
	data     []byte
	overflow bool
}

func (b *keptBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.data)+n > keptBodyBytes {
		b.overflow = true
	} else {
		b.data = append(b.data, p[:n]...)
	}
	return n, err
}

// keepBodies keeps each request's body as it is read, for describeBody.
func keepBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, r := withState(r)
		st.kept = &keptBody{ReadCloser: r.Body}
		r.Body = st.kept
		next.ServeHTTP(w, r)
	})
}

// describeBody returns a BadRequest naming what is wrong with the request's body, or
// nil when the body decodes (the call failed for another reason).
func describeBody(ctx context.Context) *status.Status {
	st := stateOf(ctx)
	if st == nil || st.kept == nil {
		return nil
	}
	kept := st.kept
	md := bodyMessage(ctx)
	if md == nil {
		return nil
	}
	kept.mu.Lock()
	data, overflow := kept.data, kept.overflow
	kept.mu.Unlock()
	if overflow {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := d.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // no body: grpc-gateway accepts that
		}
		return badRequest("", "the request body is not valid JSON", "INVALID_JSON")
	}
	if protojson.Unmarshal(raw, dynamicpb.NewMessage(md)) == nil {
		return nil
	}
	return describeDecodeFailure(raw, md)
}

// bodyMessage is the message the route's body decodes into: the request for
// `body: "*"`, or the field's message for `body: "field"`.
func bodyMessage(ctx context.Context) protoreflect.MessageDescriptor {
	md := routeMethod(ctx)
	if md == nil {
		return nil
	}
	rule := matchingRule(ctx, md)
	switch body := rule.GetBody(); body {
	case "":
		return nil
	case "*":
		return md.Input()
	default:
		if fd := md.Input().Fields().ByName(protoreflect.Name(body)); fd != nil && fd.Message() != nil && fd.Message().FullName() != "google.api.HttpBody" {
			return fd.Message()
		}
		return nil
	}
}

// routeMethod is the RPC a REST call was routed to.
func routeMethod(ctx context.Context) protoreflect.MethodDescriptor {
	method, ok := runtime.RPCMethod(ctx)
	if !ok {
		return nil
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(strings.ReplaceAll(strings.TrimPrefix(method, "/"), "/", ".")))
	if err != nil {
		return nil
	}
	md, _ := d.(protoreflect.MethodDescriptor)
	return md
}

func badRequest(field, description, reason string) *status.Status {
	msg := "invalid request body: " + description
	if field != "" {
		msg = fmt.Sprintf("invalid request body: %s: %s", field, description)
	}
	st, err := status.New(codes.InvalidArgument, msg).WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: description, Reason: reason}},
	})
	if err != nil { // a BadRequest always marshals
		return status.New(codes.InvalidArgument, msg)
	}
	return st
}

// describeDecodeFailure finds the member of raw that protojson refuses, by decoding
// each member alone, and names it as the client wrote it.
func describeDecodeFailure(raw json.RawMessage, md protoreflect.MessageDescriptor) *status.Status {
	path, fd, unknown := culprit(raw, md, "")
	switch {
	case unknown:
		return badRequest(path, "unknown field", "UNKNOWN_FIELD")
	case fd != nil:
		return badRequest(path, "expects "+expected(fd), "INVALID_VALUE")
	case path == "":
		return badRequest("", "expects a JSON object", "INVALID_VALUE")
	}
	return badRequest(path, "invalid value", "INVALID_VALUE")
}

// culprit returns the path of the first member of the object raw that protojson refuses
// as a member of md, the field it sets (nil if none), and whether it names no field.
func culprit(raw json.RawMessage, md protoreflect.MessageDescriptor, prefix string) (string, protoreflect.FieldDescriptor, bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return prefix, nil, false
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return prefix, nil, false
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := d.Decode(&value); err != nil {
			return prefix, nil, false
		}
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		fd := md.Fields().ByJSONName(key)
		if fd == nil {
			fd = md.Fields().ByTextName(key)
		}
		if fd == nil {
			return path, nil, true
		}
		member, err := json.Marshal(map[string]json.RawMessage{key: value})
		if err != nil {
			return path, fd, false
		}
		if protojson.Unmarshal(member, dynamicpb.NewMessage(md)) == nil {
			continue
		}
		// Look inside a message, or a list of messages, for the member at fault.
		if sub := fd.Message(); sub != nil && !fd.IsMap() && !strings.HasPrefix(string(sub.FullName()), "google.protobuf.") {
			if !fd.IsList() {
				if p, f, u := culprit(value, sub, path); p != path {
					return p, f, u
				}
				return path, fd, false
			}
			var items []json.RawMessage
			if json.Unmarshal(value, &items) == nil {
				for i, item := range items {
					ip := path + "[" + strconv.Itoa(i) + "]"
					if protojson.Unmarshal(item, dynamicpb.NewMessage(sub)) == nil {
						continue
					}
					if p, f, u := culprit(item, sub, ip); p != ip {
						return p, f, u
					}
					return ip, fd, false
				}
			}
		}
		return path, fd, false
	}
	return prefix, nil, false
}

// expected says what JSON a field takes, in the words of a JSON client.
func expected(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return "an object"
	}
	if fd.IsList() {
		return "a list"
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		return "a string"
	case protoreflect.BytesKind:
		return "a base64 string"
	case protoreflect.BoolKind:
		return "true or false"
	case protoreflect.EnumKind:
		values := fd.Enum().Values()
		names := make([]string, 0, values.Len())
		for i := range values.Len() {
			names = append(names, string(values.Get(i).Name()))
		}
		return "one of " + strings.Join(names, ", ")
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return "an integer (a number or a decimal string)"
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return "a number"
	case protoreflect.MessageKind, protoreflect.GroupKind:
		switch fd.Message().FullName() {
		case "google.protobuf.Timestamp":
			return "an RFC 3339 timestamp such as \"2026-01-02T15:04:05Z\""
		case "google.protobuf.Duration":
			return "a duration in seconds such as \"1.5s\""
		case "google.protobuf.FieldMask":
			return "a comma-separated list of field names"
		}
		return "an object"
	default:
		return "an integer"
	}
}

// restFieldNames rewrites the field violations of a REST call's BadRequest from proto
// names to the JSON names the client wrote ("display_name" becomes "displayName"),
// relative to the request body where the route takes one field as its body. The gRPC
// door keeps the proto names its clients use.
func restFieldNames(ctx context.Context, st *status.Status) *status.Status {
	if st.Code() != codes.InvalidArgument {
		return st
	}
	md := routeMethod(ctx)
	if md == nil {
		return st
	}
	p := st.Proto()
	changed := false
	for i, detail := range p.GetDetails() {
		br := &errdetails.BadRequest{}
		if detail.UnmarshalTo(br) != nil {
			continue
		}
		summary := validation.Summary(br)
		for _, v := range br.GetFieldViolations() {
			if name := restFieldPath(ctx, md, v.GetField()); name != v.GetField() {
				v.Field, changed = name, true
			}
		}
		if p.GetMessage() == summary {
			p.Message = validation.Summary(br)
		}
		if err := p.GetDetails()[i].MarshalFrom(br); err != nil {
			return st
		}
	}
	if !changed {
		return st
	}
	return status.FromProto(p)
}

// restFieldPath is a proto field path as the REST client wrote it.
func restFieldPath(ctx context.Context, md protoreflect.MethodDescriptor, path string) string {
	if body := bodyField(ctx, md); body != "" {
		if rest, ok := strings.CutPrefix(path, body+"."); ok {
			if fd := md.Input().Fields().ByName(protoreflect.Name(body)); fd != nil && fd.Message() != nil {
				return validation.JSONPath(fd.Message(), rest)
			}
		}
	}
	return validation.JSONPath(md.Input(), path)
}

// bodyField is the request field the route takes as its whole body (`body: "user"`),
// or "" for `body: "*"` and routes without a body.
func bodyField(ctx context.Context, md protoreflect.MethodDescriptor) string {
	if b := matchingRule(ctx, md).GetBody(); b != "*" {
		return b
	}
	return ""
}

// matchingRule is the HTTP binding of md that the call came in by.
func matchingRule(ctx context.Context, md protoreflect.MethodDescriptor) *annotations.HttpRule {
	rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	if rule == nil {
		return nil
	}
	pattern, _ := runtime.HTTPPathPattern(ctx)
	for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
		if rulePath(r) == pattern {
			return r
		}
	}
	return rule
}

func rulePath(r *annotations.HttpRule) string {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return p.Get
	case *annotations.HttpRule_Put:
		return p.Put
	case *annotations.HttpRule_Post:
		return p.Post
	case *annotations.HttpRule_Delete:
		return p.Delete
	case *annotations.HttpRule_Patch:
		return p.Patch
	case *annotations.HttpRule_Custom:
		return p.Custom.GetPath()
	}
	return ""
}
