package fault_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/backplane/backplane/internal/fault"
)

func TestStatusMapsEveryKind(t *testing.T) {
	t.Parallel()
	cases := map[fault.Kind]codes.Code{
		fault.Internal:           codes.Internal,
		fault.InvalidArgument:    codes.InvalidArgument,
		fault.NotFound:           codes.NotFound,
		fault.AlreadyExists:      codes.AlreadyExists,
		fault.FailedPrecondition: codes.FailedPrecondition,
		fault.Unauthenticated:    codes.Unauthenticated,
		fault.PermissionDenied:   codes.PermissionDenied,
		fault.ResourceExhausted:  codes.ResourceExhausted,
		fault.Unavailable:        codes.Unavailable,
		fault.Aborted:            codes.Aborted,
		fault.Canceled:           codes.Canceled,
		fault.DeadlineExceeded:   codes.DeadlineExceeded,
		fault.Unimplemented:      codes.Unimplemented,
		fault.OutOfRange:         codes.OutOfRange,
	}
	for kind, want := range cases {
		st := fault.Status(fault.New(kind, "msg"))
		require.Equal(t, want, st.Code(), "kind %d", kind)
		require.Equal(t, "msg", st.Message())
	}
}

func TestStatusHidesCauseAndUnknownErrors(t *testing.T) {
	t.Parallel()
	cause := errors.New("pq: relation users password=hunter2")
	st := fault.Status(fmt.Errorf("store: %w", fault.Wrap(fault.NotFound, cause, "user not found")))
	require.Equal(t, codes.NotFound, st.Code())
	require.Equal(t, "user not found", st.Message())

	st = fault.Status(errors.New("dial tcp 10.0.0.1: secret internals"))
	require.Equal(t, codes.Internal, st.Code())
	require.NotContains(t, st.Message(), "secret")
}

func TestStatusPassesThroughAndContext(t *testing.T) {
	t.Parallel()
	require.Equal(t, codes.Aborted, fault.Status(status.Error(codes.Aborted, "x")).Code())
	require.Equal(t, codes.Canceled, fault.Status(context.Canceled).Code())
	require.Equal(t, codes.DeadlineExceeded, fault.Status(fmt.Errorf("q: %w", context.DeadlineExceeded)).Code())
	require.Equal(t, codes.OK, fault.Status(nil).Code())
}

func TestStatusCarriesDetails(t *testing.T) {
	t.Parallel()
	err := fault.New(fault.InvalidArgument, "bad").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "email", Description: "must be an email"}},
	})
	st := fault.Status(err)
	require.Len(t, st.Details(), 1)
	br, ok := st.Details()[0].(*errdetails.BadRequest)
	require.True(t, ok)
	require.Equal(t, "email", br.GetFieldViolations()[0].GetField())
	require.Equal(t, fault.InvalidArgument, fault.KindOf(fmt.Errorf("wrapped: %w", err)))
	require.Equal(t, fault.Internal, fault.KindOf(errors.New("plain")))
}

// timeoutError is what pgx returns when a query's context deadline passes: its own
// type, wrapping the context's error.
type timeoutError struct{ err error }

func (e *timeoutError) Error() string { return "timeout: " + e.err.Error() }
func (e *timeoutError) Unwrap() error { return e.err }

func TestAnInternalFailureTheCallerEndedIsNotInternal(t *testing.T) {
	t.Parallel()
	late := fault.Wrap(fault.Internal, fmt.Errorf("insert user: %w", &timeoutError{context.DeadlineExceeded}), "could not create the account")
	st := fault.Status(fmt.Errorf("signup: %w", late))
	require.Equal(t, codes.DeadlineExceeded, st.Code())
	require.NotContains(t, st.Message(), "timeout", "the cause stays hidden")
	require.Equal(t, fault.DeadlineExceeded, fault.KindOf(late))
	require.Less(t, fault.KindOf(late).LogLevel(), slog.LevelError, "a caller's deadline is not a bug")

	gone := fault.Wrap(fault.Internal, fmt.Errorf("read: %w", context.Canceled), "could not read")
	require.Equal(t, codes.Canceled, fault.Status(gone).Code())
	require.Equal(t, fault.Canceled, fault.KindOf(gone))
	require.Less(t, fault.KindOf(gone).LogLevel(), slog.LevelError)

	// Services wrap any store error as UNAVAILABLE too: a deadline is no outage.
	outage := fault.Wrap(fault.Unavailable, fmt.Errorf("totals: %w", &timeoutError{context.DeadlineExceeded}), "could not read the usage")
	require.Equal(t, codes.DeadlineExceeded, fault.Status(outage).Code())
	require.Equal(t, fault.DeadlineExceeded, fault.KindOf(outage))
	require.Equal(t, codes.Unavailable, fault.Status(fault.Wrap(fault.Unavailable, errors.New("connection refused"), "x")).Code())

	// A kind the service chose on purpose stands, whatever its cause.
	chosen := fault.Wrap(fault.FailedPrecondition, context.DeadlineExceeded, "the upload window closed")
	require.Equal(t, codes.FailedPrecondition, fault.Status(chosen).Code())
	require.Equal(t, fault.FailedPrecondition, fault.KindOf(chosen))
	// And a broken query stays INTERNAL.
	require.Equal(t, codes.Internal, fault.Status(fault.Wrap(fault.Internal, errors.New("syntax error"), "x")).Code())
	require.Equal(t, fault.Internal, fault.KindOf(errors.New("plain")))
}
