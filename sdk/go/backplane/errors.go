package backplane

import (
	"context"
	"errors"
	"maps"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// requestIDKey is the metadata key under which Backplane's edge returns the id it gave
// the call (the REST door's X-Request-Id header).
const requestIDKey = "x-request-id"

// Error is a call that Backplane, or the connection to it, refused: the gRPC status with
// its google.rpc details decoded. Every call made through a [Client] that fails with a
// status returns an *Error; find it with errors.As. It also satisfies the interface
// that status.FromError and status.Code look for, so code written against plain gRPC
// errors keeps working.
//
// Message is written for the client's developer, not for its end users: show end users
// a message chosen from Code, FieldViolations and ErrorInfo.Reason instead.
type Error struct {
	// Code says what kind of failure this is:
	//   - InvalidArgument: the request is malformed; FieldViolations says where.
	//   - Unauthenticated: no credential, or one that is invalid or expired and that a
	//     refresh could not replace (the session has ended: sign in again).
	//   - PermissionDenied: the credential is valid but may not make this call (an API
	//     key without the scope, a user calling an administrator's method).
	//   - NotFound, AlreadyExists, FailedPrecondition, Aborted: the resource's state.
	//   - ResourceExhausted: a rate limit or a quota; RetryInfo says when to come back,
	//     QuotaFailure which quota.
	//   - Unavailable: a transient failure; safe calls were already retried.
	//   - Canceled, DeadlineExceeded: the caller's context ended the call; errors.Is
	//     matches context.Canceled and context.DeadlineExceeded.
	//   - Internal, Unknown: a failure on the server; quote RequestID to its operators.
	Code codes.Code
	// Message describes the failure for a developer.
	Message string
	// RequestID is the id Backplane gave the call, the key to its logs and traces; empty
	// when the call never reached Backplane.
	RequestID string
	// FieldViolations are the request fields that failed validation (google.rpc.BadRequest).
	FieldViolations []FieldViolation
	// QuotaFailure lists the quotas the call would exceed (google.rpc.QuotaFailure).
	QuotaFailure []QuotaViolation
	// RetryInfo is when the server asks the call to be tried again (google.rpc.RetryInfo);
	// nil when it gave no such advice.
	RetryInfo *RetryInfo
	// ErrorInfo is the machine-readable reason of the failure (google.rpc.ErrorInfo); nil
	// when the server sent none.
	ErrorInfo *ErrorInfo

	status *status.Status
	cause  error
}

// FieldViolation is one invalid request field.
type FieldViolation struct {
	// Field is the path of the field, such as "email" or "user.display_name".
	Field string
	// Description says what is wrong, such as "must be at least 3 characters".
	Description string
	// Reason is the rule that failed, such as "string.min_len".
	Reason string
}

// QuotaViolation is one quota a call would exceed.
type QuotaViolation struct {
	// Subject is what the quota counts, such as a meter or a user.
	Subject string
	// Description says how the quota was exceeded.
	Description string
}

// RetryInfo is the server's advice on when to try again.
type RetryInfo struct {
	// Delay is how long to wait before the next attempt.
	Delay time.Duration
}

// ErrorInfo names the cause of an error in a form programs can branch on.
type ErrorInfo struct {
	// Reason is a constant, UPPER_SNAKE_CASE name of the cause.
	Reason string
	// Domain is the system that produced the error.
	Domain string
	// Metadata holds the cause's parameters.
	Metadata map[string]string
}

// Error formats the code and message.
func (e *Error) Error() string {
	return "backplane: " + e.Code.String() + ": " + e.Message
}

// GRPCStatus returns the status the error was built from, so that status.FromError and
// status.Code see through an *Error to its code, message and details.
func (e *Error) GRPCStatus() *status.Status {
	return e.status
}

// Unwrap returns the caller's context error when that context ended the call, so that
// errors.Is(err, context.DeadlineExceeded) holds.
func (e *Error) Unwrap() error {
	return e.cause
}

// asError converts a failed call's error into an *Error, reading the request id from
// the response metadata. Errors that are not a gRPC status (a token store's failure)
// and errors that already are an *Error pass through.
func asError(ctx context.Context, err error, header, trailer metadata.MD) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := fromStatus(st)
	e.RequestID = firstValue(requestIDKey, header, trailer)
	if (e.Code == codes.Canceled || e.Code == codes.DeadlineExceeded) && ctx.Err() != nil {
		e.cause = ctx.Err()
	}
	return e
}

// fromStatus decodes a status's details into an *Error. Details of types it does not
// know stay reachable through GRPCStatus().Details().
func fromStatus(st *status.Status) *Error {
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.FieldViolations = append(e.FieldViolations, FieldViolation{
					Field: v.GetField(), Description: v.GetDescription(), Reason: v.GetReason(),
				})
			}
		case *errdetails.QuotaFailure:
			for _, v := range d.GetViolations() {
				e.QuotaFailure = append(e.QuotaFailure, QuotaViolation{Subject: v.GetSubject(), Description: v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				e.RetryInfo = &RetryInfo{Delay: d.GetRetryDelay().AsDuration()}
			}
		case *errdetails.ErrorInfo:
			e.ErrorInfo = &ErrorInfo{Reason: d.GetReason(), Domain: d.GetDomain(), Metadata: maps.Clone(d.GetMetadata())}
		}
	}
	return e
}

// firstValue returns key's first value in the first of mds that has one.
func firstValue(key string, mds ...metadata.MD) string {
	for _, md := range mds {
		if v := md.Get(key); len(v) > 0 {
			return v[0]
		}
	}
	return ""
}
