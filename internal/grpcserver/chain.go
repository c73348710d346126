package grpcserver

import (
	"context"

	"google.golang.org/grpc"
)

// chainUnary composes interceptors into one, the first outermost, as
// grpc.ChainUnaryInterceptor does inside the server; composing it ourselves lets the
// same chain run outside a grpc.Server.
func chainUnary(interceptors []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		next := handler
		for i := len(interceptors) - 1; i >= 0; i-- {
			interceptor, inner := interceptors[i], next
			next = func(ctx context.Context, req any) (any, error) {
				return interceptor(ctx, req, info, inner)
			}
		}
		return next(ctx, req)
	}
}

// chainStream composes stream interceptors into one, the first outermost.
func chainStream(interceptors []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		next := handler
		for i := len(interceptors) - 1; i >= 0; i-- {
			interceptor, inner := interceptors[i], next
			next = func(srv any, ss grpc.ServerStream) error {
				return interceptor(srv, ss, info, inner)
			}
		}
		return next(srv, ss)
	}
}
