package gateway

import (
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/backplane/backplane/internal/access"
	"github.com/backplane/backplane/internal/grpccodec"
	"github.com/backplane/backplane/internal/service"
)

// route is one edge-exposed RPC and the service connection that serves it. Both front
// doors forward through routes; a method without one does not exist at the edge.
type route struct {
	fullMethod    string
	method        protoreflect.MethodDescriptor
	in, out       protoreflect.MessageType
	clientStreams bool
	serverStreams bool
	conn          grpc.ClientConnInterface
	maxTimeout    time.Duration
	// streamOpts are the options of the route's calls to the service: the file codec
	// for a stream of google.api.HttpBody (the asset downloads).
	streamOpts []grpc.CallOption
}

// buildRoutes resolves every edge-exposed method of the APIs to its Go message types
// and its backend. Messages are decoded into their generated types (rather than relayed
// as raw frames) so the edge runs the same typed interceptors as the services,
// validation included.
func buildRoutes(apis []service.API, backends map[string]grpc.ClientConnInterface, maxTimeout time.Duration) (map[string]*route, error) {
	routes := map[string]*route{}
	for _, e := range apis {
		conn := backends[e.Owner]
		if conn == nil {
			return nil, fmt.Errorf("gateway: no backend connection for %s (serving %s)", e.Owner, e.Service.FullName())
		}
		methods := e.Service.Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			if !access.EdgeExposed(md) {
				continue
			}
			in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
			if err != nil {
				return nil, fmt.Errorf("gateway: no Go type linked for %s: %w", md.Input().FullName(), err)
			}
			out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
			if err != nil {
				return nil, fmt.Errorf("gateway: no Go type linked for %s: %w", md.Output().FullName(), err)
			}
			full := "/" + string(e.Service.FullName()) + "/" + string(md.Name())
			routes[full] = &route{
				fullMethod:    full,
				method:        md,
				in:            in,
				out:           out,
				clientStreams: md.IsStreamingClient(),
				serverStreams: md.IsStreamingServer(),
				conn:          conn,
				maxTimeout:    maxTimeout,
				streamOpts:    streamOptions(md),
			}
		}
	}
	return routes, nil
}

func (r *route) streamDesc() *grpc.StreamDesc {
	return &grpc.StreamDesc{StreamName: string(r.method.Name()), ClientStreams: r.clientStreams, ServerStreams: r.serverStreams}
}

// streamOptions are the call options of a method's calls to its service. A stream of
// google.api.HttpBody messages (a file's bytes: the asset downloads) asks for the file
// codec (internal/grpccodec), which moves large bodies with fewer copies; every other
// call keeps gRPC's codec. A connection in the process (internal/mesh) ignores it: its
// messages are never encoded.
func streamOptions(md protoreflect.MethodDescriptor) []grpc.CallOption {
	if md.IsStreamingServer() && md.Output().FullName() == "google.api.HttpBody" {
		return []grpc.CallOption{grpccodec.CallOption()}
	}
	return nil
}
