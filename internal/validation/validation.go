package validation

import (
	"context"
	"errors"
	"strings"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/backplane/backplane/internal/fault"
)

// Validator checks messages against their protovalidate rules.
type Validator struct {
	v protovalidate.Validator
}

// New builds a Validator. Rules are compiled lazily per message type and cached.
func New() (*Validator, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	return &Validator{v: v}, nil
}

// Check returns nil when msg satisfies its rules, or an InvalidArgument *fault.Error
// carrying a BadRequest with one field violation per broken rule.
func (v *Validator) Check(msg proto.Message) error {
	err := v.v.Validate(msg)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		// A rule that cannot be compiled or evaluated is our bug, not the caller's.
		return fault.Wrap(fault.Internal, err, "request validation failed")
	}
	br := &errdetails.BadRequest{}
	for _, viol := range verr.Violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       protovalidate.FieldPathString(viol.Proto.GetField()),
			Description: viol.Proto.GetMessage(),
			Reason:      viol.Proto.GetRuleId(),
		})
	}
	return fault.New(fault.InvalidArgument, Summary(br)).WithDetails(br)
}

// Summary is the status message of a BadRequest built here: each field and what is
// wrong with it. The edge rebuilds it when it renames the fields for a REST client, so
// the message names fields as the details do.
func Summary(br *errdetails.BadRequest) string {
	parts := make([]string, 0, len(br.GetFieldViolations()))
	for _, v := range br.GetFieldViolations() {
		parts = append(parts, v.GetField()+": "+v.GetDescription())
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// UnaryServerInterceptor validates every unary request before the handler runs.
func (v *Validator) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if msg, ok := req.(proto.Message); ok {
			if err := v.Check(msg); err != nil {
				return nil, fault.Status(err).Err()
			}
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor validates every message a client streams in.
func (v *Validator) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &validatingStream{ServerStream: ss, v: v})
	}
}

type validatingStream struct {
	grpc.ServerStream
	v *Validator
}

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if msg, ok := m.(proto.Message); ok {
		if err := s.v.Check(msg); err != nil {
			return fault.Status(err).Err()
		}
	}
	return nil
}
