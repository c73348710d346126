package fault

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/protoadapt"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

const (
	// Internal is a failure of ours; the client can only retry later. The default.
	Internal Kind = iota
	// InvalidArgument means the request is malformed; retrying it unchanged fails again.
	InvalidArgument
	// NotFound means the resource does not exist, or the caller may not know that it does.
	NotFound
	// AlreadyExists means a resource with the same identity exists.
	AlreadyExists
	// FailedPrecondition means the system is not in a state that allows the operation.
	FailedPrecondition
	// Unauthenticated means no valid credential was presented.
	Unauthenticated
	// PermissionDenied means the credential is valid but does not allow the operation.
	PermissionDenied
	// ResourceExhausted means a rate limit or quota is used up.
	ResourceExhausted
	// Unavailable means a dependency is down; retrying later may succeed.
	Unavailable
	// Aborted means a concurrent change conflicted; retrying the whole operation may succeed.
	Aborted
	// Canceled means the caller went away.
	Canceled
	// DeadlineExceeded means the caller's deadline passed.
	DeadlineExceeded
	// Unimplemented means the operation is not supported.
	Unimplemented
	// OutOfRange means the request reaches past the end of something, such as a read
	// offset beyond a file's last byte.
	OutOfRange
)

// Error is a domain error with a kind, a client-safe message and a private cause.
type Error struct {
	Kind    Kind
	Message string
	Cause   error
	// Details are protobuf messages (google.rpc.BadRequest, ErrorInfo, RetryInfo, ...)
	// attached to the gRPC status.
	Details []protoadapt.MessageV1
}

// Error renders the message and the cause, for logs.
func (e *Error) Error() string {
	if e.Cause == nil {
		return e.Message
	}
	return fmt.Sprintf("%s: %v", e.Message, e.Cause)
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Cause }

// New returns an error of the given kind with a client-safe message.
func New(kind Kind, message string) *Error {
	return &Error{Kind: kind, Message: message}
}

// Wrap returns an error of the given kind whose cause is err. The cause is logged,
// never sent to the client.
func Wrap(kind Kind, err error, message string) *Error {
	return &Error{Kind: kind, Message: message, Cause: err}
}

// WithDetails returns e with details appended; it changes e.
func (e *Error) WithDetails(details ...protoadapt.MessageV1) *Error {
	e.Details = append(e.Details, details...)
	return e
}

// KindOf reports the kind of err: that of the outermost *Error in its chain, or Internal.
// An Internal or Unavailable failure whose cause is a context ending (a query cut short
// by the caller's deadline, say) is DeadlineExceeded or Canceled instead: the caller gave
// up, nothing of ours broke and no dependency is down.
func KindOf(err error) Kind {
	kind := Internal
	if fe, ok := errors.AsType[*Error](err); ok {
		kind = fe.Kind
	}
	return givenUp(kind, err)
}

// givenUp is kind, unless kind is one a service gives a store's or client's failure
// without looking closer (Internal, Unavailable) and err comes from a context ending.
func givenUp(kind Kind, err error) Kind {
	if kind != Internal && kind != Unavailable {
		return kind
	}
	if gone, ok := callerGone(err); ok {
		return gone
	}
	return kind
}

// callerGone reports whether err comes from a context that ended, and how. Stores and
// clients (pgx, go-redis, gRPC) return the context's error, wrapped, when a call is cut
// short by it; a service wraps that again as Internal or Unavailable because, where it
// handles the error, it cannot tell a query its caller abandoned from a broken one or a
// database that is down. A service bounding a dependency call with a timeout of its own
// must translate that timeout itself (as UNAVAILABLE, say) rather than pass it on.
func callerGone(err error) (Kind, bool) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded, true
	case errors.Is(err, context.Canceled):
		return Canceled, true
	}
	return Internal, false
}
