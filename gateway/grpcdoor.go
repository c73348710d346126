package gateway

import (
	"context"

	"google.golang.org/grpc"
)

// serviceDescs groups routes into one grpc.ServiceDesc per service, for the gRPC front
// door, whose descriptors are registered with the service value impl. The server's
// interceptor chain wraps each handler as for any service.
func serviceDescs(routes map[string]*route, impl any) []*grpc.ServiceDesc {
	byService := map[string]*grpc.ServiceDesc{}
	var order []*grpc.ServiceDesc
	for _, r := range routes {
		sd := r.method.Parent()
		name := string(sd.FullName())
		desc := byService[name]
		if desc == nil {
			desc = &grpc.ServiceDesc{ServiceName: name, HandlerType: (*any)(nil), Metadata: sd.ParentFile().Path()}
			byService[name] = desc
			order = append(order, desc)
		}
		if !r.clientStreams && !r.serverStreams {
			desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: string(r.method.Name()), Handler: unaryHandler(r, impl)})
			continue
		}
		desc.Streams = append(desc.Streams, grpc.StreamDesc{
			StreamName:    string(r.method.Name()),
			Handler:       func(_ any, ss grpc.ServerStream) error { return r.pump(ss) },
			ServerStreams: r.serverStreams,
			ClientStreams: r.clientStreams,
		})
	}
	return order
}

// unaryHandler serves r's unary calls. What is the same for every call (the method's
// info for the interceptors, the step that forwards) is made once, not per call.
func unaryHandler(r *route, impl any) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	info := &grpc.UnaryServerInfo{Server: impl, FullMethod: r.fullMethod}
	forward := func(ctx context.Context, req any) (any, error) {
		in, err := asMessage(req)
		if err != nil {
			return nil, err
		}
		reply := r.out.New().Interface()
		if err := r.invoke(ctx, in, reply); err != nil {
			return nil, err
		}
		return reply, nil
	}
	return func(_ any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		req := r.in.New().Interface()
		if err := dec(req); err != nil {
			return nil, err
		}
		if interceptor == nil {
			return forward(ctx, req)
		}
		return interceptor(ctx, req, info, forward)
	}
}
