package fault

import (
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// codeOf is the one mapping from kinds to gRPC codes.
var codeOf = map[Kind]codes.Code{
	Internal:           codes.Internal,
	InvalidArgument:    codes.InvalidArgument,
	NotFound:           codes.NotFound,
	AlreadyExists:      codes.AlreadyExists,
	FailedPrecondition: codes.FailedPrecondition,
	Unauthenticated:    codes.Unauthenticated,
	PermissionDenied:   codes.PermissionDenied,
	ResourceExhausted:  codes.ResourceExhausted,
	Unavailable:        codes.Unavailable,
	Aborted:            codes.Aborted,
	Canceled:           codes.Canceled,
	DeadlineExceeded:   codes.DeadlineExceeded,
	Unimplemented:      codes.Unimplemented,
	OutOfRange:         codes.OutOfRange,
}

// Code returns the gRPC code of a kind.
func (k Kind) Code() codes.Code {
	if c, ok := codeOf[k]; ok {
		return c
	}
	return codes.Internal
}

// LogLevel says how loudly an error of this kind is logged: our failures are errors,
// the caller's mistakes are informational.
func (k Kind) LogLevel() slog.Level {
	switch k {
	case Internal, Unavailable:
		return slog.LevelError
	case DeadlineExceeded, Aborted:
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}

// Status converts any error into a gRPC status. Errors that already are statuses pass
// through; context errors become CANCELED or DEADLINE_EXCEEDED, also under an Internal
// or Unavailable *Error (the caller's deadline passing mid-query is no failure of ours
// nor a dependency's outage, and is not logged as one); any other
// *Error maps through its kind; anything else is an INTERNAL error whose text is not disclosed.
func Status(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	if fe, ok := errors.AsType[*Error](err); ok {
		// Our failure, or a dependency's, only if the caller did not give up first.
		if kind := givenUp(fe.Kind, err); kind != fe.Kind {
			return contextStatus(kind)
		}
		st := status.New(fe.Kind.Code(), fe.Message)
		if len(fe.Details) > 0 {
			if withDetails, derr := st.WithDetails(fe.Details...); derr == nil {
				st = withDetails
			}
		}
		return st
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	if gone, ok := callerGone(err); ok {
		return contextStatus(gone)
	}
	return status.New(codes.Internal, "internal error")
}

// contextStatus is the answer to a call its caller gave up on.
func contextStatus(kind Kind) *status.Status {
	if kind == Canceled {
		return status.New(codes.Canceled, "the request was canceled")
	}
	return status.New(codes.DeadlineExceeded, "the request deadline passed")
}
