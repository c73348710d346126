package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/requestid"
)

// withRequestID takes the caller's request id from metadata (minting one when it is
// missing or unfit), echoes it in the response headers and stores it in the context for
// logs and for calls to further services.
func withRequestID(ctx context.Context) context.Context {
	var id string
	if vals := metadata.ValueFromIncomingContext(ctx, requestid.MetadataKey); len(vals) > 0 {
		id = vals[0]
	}
	id = requestid.Accept(id)
	// Built directly: the key is lower case already, which metadata.Pairs would
	// ensure at a cost on every call.
	_ = grpc.SetHeader(ctx, metadata.MD{requestid.MetadataKey: {id}})
	return requestid.NewContext(ctx, id)
}

func requestIDUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(withRequestID(ctx), req)
	}
}

func requestIDStream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &contextStream{ServerStream: ss, ctx: withRequestID(ss.Context())})
	}
}

// contextStream replaces a stream's context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// recoverPanic turns a panic in a handler into INTERNAL, logging the stack, so that one
// bad request cannot take the process down.
func recoverPanic(log *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in grpc handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	}
}

func recoveryUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(recoverPanic(log)))
}

func recoveryStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(recoverPanic(log)))
}

// normalize converts whatever a handler returned into a gRPC status through the one
// kind-to-code mapping, logging the hidden cause of our own failures.
func normalize(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	st := fault.Status(err)
	st = unavailable(st, err)
	if isShuttingDown(st) {
		// A stream ended by a draining server (a service behind the front door, here
		// relayed) is an orderly end of shutdown: the client reconnects elsewhere.
		return st.Err()
	}
	switch kind := fault.KindOf(err); st.Code() {
	case codes.Internal, codes.Unavailable:
		log.Log(ctx, kind.LogLevel(), "request failed", "code", st.Code().String(), "error", err.Error())
	case codes.DeadlineExceeded, codes.Canceled:
		// The caller gave up while we worked: not a bug, so below error, but the hidden
		// cause says which step was slow (the query, the lock it waited for).
		if fe, ok := errors.AsType[*fault.Error](err); ok && fe.Cause != nil {
			log.Log(ctx, kind.LogLevel(), "request ended by its caller", "code", st.Code().String(), "error", err.Error())
		}
	}
	return st.Err()
}

func normalizeUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		return resp, normalize(ctx, log, err)
	}
}

func normalizeStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return normalize(ss.Context(), log, handler(srv, ss))
	}
}
