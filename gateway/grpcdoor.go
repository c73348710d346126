package gateway

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/backplane/backplane/internal/handover"
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
		hs := &headerBatch{stream: grpc.ServerTransportStreamFromContext(ctx)}
		if hs.stream == nil {
			return nil, status.Error(codes.Internal, "the gRPC door's call has no server stream")
		}
		ctx = grpc.NewContextWithServerTransportStream(ctx, hs)
		var resp any
		var err error
		if interceptor == nil {
			resp, err = forward(ctx, req)
		} else {
			resp, err = interceptor(ctx, req, info, forward)
		}
		hs.flush(err == nil)
		return resp, err
	}
}

// headerBatch gathers the headers a door call's chain sets (its request id, its rate
// limit, the service's own) and hands them to the call's stream at once: the stream
// copies all of its header on every grpc.SetHeader, but takes a header sent whole as
// it is. Trailers go straight through.
type headerBatch struct {
	stream grpc.ServerTransportStream
	mu     sync.Mutex
	header metadata.MD
	done   bool // sent, or handed back to the stream
}

var _ grpc.ServerTransportStream = (*headerBatch)(nil)

func (h *headerBatch) Method() string { return h.stream.Method() }

func (h *headerBatch) SetHeader(md metadata.MD) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return h.stream.SetHeader(md)
	}
	h.header = handover.Add(h.header, md)
	return nil
}

func (h *headerBatch) SendHeader(md metadata.MD) error {
	if err := h.SetHeader(md); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return h.stream.SendHeader(nil)
	}
	h.done = true
	return h.stream.SendHeader(h.header)
}

func (h *headerBatch) SetTrailer(md metadata.MD) error { return h.stream.SetTrailer(md) }

// flush hands the gathered header to the stream once the chain has returned: sent
// ahead of a reply, which it precedes on the wire in any case; set on a failed call,
// whose header then travels with its status, as it would have.
func (h *headerBatch) flush(ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return
	}
	h.done = true
	if len(h.header) == 0 {
		return
	}
	if ok {
		_ = h.stream.SendHeader(h.header)
		return
	}
	_ = h.stream.SetHeader(h.header)
}
