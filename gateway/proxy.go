package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/backplane/backplane/internal/access"
)

// proxyDesc builds a grpc.ServiceDesc that forwards every edge-exposed method of sd to
// conn, decoding each message into its generated Go type. Decoding (rather than
// forwarding raw frames) costs little and lets the edge run the same interceptors as the
// services, validation included. It returns nil when no method is edge-exposed.
func proxyDesc(sd protoreflect.ServiceDescriptor, conn grpc.ClientConnInterface) (*grpc.ServiceDesc, error) {
	desc := &grpc.ServiceDesc{
		ServiceName: string(sd.FullName()),
		HandlerType: (*any)(nil),
		Metadata:    sd.ParentFile().Path(),
	}
	methods := sd.Methods()
	for i := range methods.Len() {
		md := methods.Get(i)
		if !access.EdgeExposed(md) {
			continue
		}
		fullMethod := "/" + string(sd.FullName()) + "/" + string(md.Name())
		in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
		if err != nil {
			return nil, fmt.Errorf("gateway: no Go type linked for %s: %w", md.Input().FullName(), err)
		}
		out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
		if err != nil {
			return nil, fmt.Errorf("gateway: no Go type linked for %s: %w", md.Output().FullName(), err)
		}
		if !md.IsStreamingClient() && !md.IsStreamingServer() {
			desc.Methods = append(desc.Methods, grpc.MethodDesc{
				MethodName: string(md.Name()),
				Handler:    unaryHandler(conn, fullMethod, in, out),
			})
			continue
		}
		desc.Streams = append(desc.Streams, grpc.StreamDesc{
			StreamName:    string(md.Name()),
			Handler:       streamHandler(conn, fullMethod, in, out, md.IsStreamingClient(), md.IsStreamingServer()),
			ServerStreams: md.IsStreamingServer(),
			ClientStreams: md.IsStreamingClient(),
		})
	}
	if len(desc.Methods) == 0 && len(desc.Streams) == 0 {
		return nil, nil
	}
	return desc, nil
}

// forwardable reports whether a metadata key travels to the service. Keys that describe
// the client's connection to the edge, not the request, stay behind: the edge's own
// connection to the service sets its own.
func forwardable(key string) bool {
	switch {
	case strings.HasPrefix(key, ":"), strings.HasPrefix(key, "grpc-"):
		return false
	case key == "content-type", key == "user-agent", key == "te", key == "connection", key == "host":
		return false
	}
	return true
}

// outgoingContext copies the caller's metadata to the call to the service. The caller's
// deadline travels with ctx.
func outgoingContext(ctx context.Context) context.Context {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, v := range in {
		if forwardable(k) {
			out[k] = v
		}
	}
	if ua := in.Get("user-agent"); len(ua) > 0 {
		out.Set("x-forwarded-user-agent", ua...)
	}
	return metadata.NewOutgoingContext(ctx, out)
}

func unaryHandler(conn grpc.ClientConnInterface, fullMethod string, in, out protoreflect.MessageType) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		req := in.New().Interface()
		if err := dec(req); err != nil {
			return nil, err
		}
		forward := func(ctx context.Context, req any) (any, error) {
			resp := out.New().Interface()
			var header, trailer metadata.MD
			err := conn.Invoke(outgoingContext(ctx), fullMethod, req, resp, grpc.Header(&header), grpc.Trailer(&trailer))
			_ = grpc.SetHeader(ctx, header)
			_ = grpc.SetTrailer(ctx, trailer)
			if err != nil {
				return nil, err
			}
			return resp, nil
		}
		if interceptor == nil {
			return forward(ctx, req)
		}
		return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}, forward)
	}
}

func streamHandler(conn grpc.ClientConnInterface, fullMethod string, in, out protoreflect.MessageType, clientStreams, serverStreams bool) grpc.StreamHandler {
	desc := &grpc.StreamDesc{ClientStreams: clientStreams, ServerStreams: serverStreams}
	return func(_ any, ss grpc.ServerStream) error {
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		cs, err := conn.NewStream(outgoingContext(ctx), desc, fullMethod)
		if err != nil {
			return err
		}

		// Client to service. A send error means the service ended the stream; its status
		// arrives through RecvMsg below, so it is not reported from here.
		upstream := make(chan error, 1)
		go func() {
			for {
				msg := in.New().Interface()
				if err := ss.RecvMsg(msg); err != nil {
					if errors.Is(err, io.EOF) {
						upstream <- cs.CloseSend()
						return
					}
					cancel()
					upstream <- err
					return
				}
				if err := cs.SendMsg(msg); err != nil {
					upstream <- nil
					return
				}
			}
		}()

		// Service to client.
		if header, err := cs.Header(); err == nil && len(header) > 0 {
			if err := ss.SendHeader(header); err != nil {
				return err
			}
		}
		for {
			msg := out.New().Interface()
			if err := cs.RecvMsg(msg); err != nil {
				ss.SetTrailer(cs.Trailer())
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if err := ss.SendMsg(msg); err != nil {
				return err
			}
		}
	}
}
