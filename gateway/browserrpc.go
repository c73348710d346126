package gateway

import (
	"fmt"
	"net/http"

	"connectrpc.com/vanguard"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

// Browsers cannot speak native gRPC (it needs HTTP/2 trailers that fetch does not
// expose), so the REST port also accepts gRPC-Web and the Connect protocol at the gRPC
// method paths (POST /backplane.auth.v1.AuthService/Login). Vanguard translates each
// call to gRPC and hands it, in process, to the gRPC front door's own server: the same
// interceptor chain (authentication, validation, rate limits) and the same forwarding
// as a native gRPC call. They are served on the REST port rather than the gRPC one
// because that is the port browsers already reach: it speaks HTTP/1.1 as well as
// HTTP/2, sits behind the HTTP ingress, and carries CORS; the gRPC port stays a plain
// HTTP/2 gRPC server, untouched and as fast as before.

// browserRPCHeaders are the request headers gRPC-Web and Connect clients send, which a
// cross-origin page may only send once CORS allows them.
var browserRPCHeaders = []string{
	"Connect-Protocol-Version", "Connect-Timeout-Ms", "Connect-Accept-Encoding", "Connect-Content-Encoding",
	"Grpc-Timeout", "X-Grpc-Web", "X-User-Agent",
}

// browserRPCExposedHeaders are the response headers and trailers those clients read.
var browserRPCExposedHeaders = []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"}

// browserRPC returns the handler for gRPC-Web and Connect calls to the named services
// of srv, the gRPC front door. The REST door mounts it at those services' method paths
// only: the REST mappings stay grpc-gateway's, with our error mapping.
func browserRPC(srv *grpc.Server, services []string) (http.Handler, error) {
	svcs := make([]*vanguard.Service, 0, len(services))
	for _, name := range services {
		svcs = append(svcs, vanguard.NewService(name, srv,
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
			vanguard.WithTargetCodecs(vanguard.CodecProto),
			// The hop to the server is in process: compressing it would only cost CPU.
			vanguard.WithNoTargetCompression(),
		))
	}
	t, err := vanguard.NewTranscoder(svcs,
		// JSON as the REST door reads and writes it: unknown fields refused, unset
		// message fields left out.
		vanguard.WithCodec(func(res vanguard.TypeResolver) vanguard.Codec {
			return &vanguard.JSONCodec{
				MarshalOptions:   protojson.MarshalOptions{Resolver: res, EmitDefaultValues: true},
				UnmarshalOptions: protojson.UnmarshalOptions{Resolver: res},
			}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("gateway: gRPC-Web and Connect: %w", err)
	}
	return t, nil
}
