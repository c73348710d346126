package mesh

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/fullstorydev/grpchan/inprocgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/backplane/backplane/internal/grpcclient"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/handover"
	"github.com/backplane/backplane/internal/mtls"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/internal/telemetry"
)

// localConn is a connection to a service that this process serves itself: a call is a
// function call on the service's handlers, run through the service's own interceptor
// chain (every policy, the vouch, validation), with no socket, TLS, HTTP/2 framing or
// protobuf encoding between them. It exists before the service starts, so that what is
// built before the services (the checks every server shares) can hold it; a call before
// the service starts answers UNAVAILABLE, as a connection to a server not yet listening
// would.
type localConn struct {
	// name is the service's; caller the piece whose calls the connection carries, as
	// telemetry reports them; identity the piece its service credential names.
	name, caller, identity string
	ch                     atomic.Pointer[inprocgrpc.Channel]
}

var _ grpc.ClientConnInterface = (*localConn)(nil)

func (c *localConn) channel() (*inprocgrpc.Channel, error) {
	ch := c.ch.Load()
	if ch == nil {
		return nil, status.Errorf(codes.Unavailable, "%s has not started yet", c.name)
	}
	return ch, nil
}

func (c *localConn) Invoke(ctx context.Context, method string, req, reply any, opts ...grpc.CallOption) error {
	ch, err := c.channel()
	if err != nil {
		return err
	}
	return ch.Invoke(ctx, method, req, reply, opts...)
}

func (c *localConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	ch, err := c.channel()
	if err != nil {
		return nil, err
	}
	return ch.NewStream(ctx, desc, method, opts...)
}

// local makes the connection by which the piece caller calls the service name, served
// by this process: it carries the process's service token, as a dialled connection
// does, and its calls are traced and measured as caller's. The service answers once
// serveLocally has run.
func (p *Process) local(caller, name string, creds *credentials) (*localConn, grpc.ClientConnInterface) {
	lc := &localConn{name: name, caller: caller, identity: creds.caller}
	return lc, grpcclient.InProcess(lc, 0, grpc.PerRPCCredentials(creds.tokens.PerRPCCredentials(creds.caller)))
}

// serveLocally serves inst, whose server is srv, to lc's callers in process. Each call
// runs through srv's own interceptor chain, as a network call does, and arrives with
// the peer the in-process channel alone can give it: the caller named by
// mtls.InProcess, where a network call names its caller with a verified certificate.
func (p *Process) serveLocally(lc *localConn, srv *grpcserver.Server, inst *service.Instance) {
	unary, stream := srv.UnaryChain(), srv.StreamChain()
	from := &peer.Peer{Addr: loopback, AuthInfo: mtls.InProcess{Piece: lc.identity}}
	ch := new(inprocgrpc.Channel).
		WithCloner(handOver{}).
		WithServerUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return unary(peer.NewContext(ctx, from), req, info, handler)
		}).
		WithServerStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			return stream(srv, &peerStream{ServerStream: ss, ctx: peer.NewContext(ss.Context(), from)}, info, handler)
		})
	inst.Register(ch)
	healthpb.RegisterHealthServer(ch, srv.Health())

	known := map[string]bool{}
	for svc, info := range ch.GetServiceInfo() {
		for _, m := range info.Methods {
			known["/"+svc+"/"+m.Name] = true
		}
	}
	client, server := p.providers(lc.caller), p.providers(lc.name)
	ch.WithClientStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(client.TracerProvider()),
		otelgrpc.WithMeterProvider(client.MeterProvider()),
		otelgrpc.WithPropagators(client.Propagator()),
		otelgrpc.WithFilter(telemetry.GRPCFilter(nil)),
	)).WithServerStatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(server.TracerProvider()),
		otelgrpc.WithMeterProvider(server.MeterProvider()),
		otelgrpc.WithPropagators(server.Propagator()),
		otelgrpc.WithFilter(telemetry.GRPCFilter(func(m string) bool { return known[m] })),
	))
	lc.ch.Store(ch)

	name := lc.name
	p.AddCheck("service "+name, func(ctx context.Context) error {
		resp, err := srv.Health().Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%s is %s", name, resp.GetStatus())
		}
		return nil
	})
}

// loopback is the address an in-process call comes from, for whatever reads a peer's
// address (a session's sign-in address when the edge sent none): the call never left
// this machine.
var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}

// peerStream gives a server stream the in-process caller's peer.
type peerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *peerStream) Context() context.Context { return s.ctx }

// handOver moves messages between the two ends of an in-process call instead of copying
// them, where that is safe, and copies them where it is not.
//
// Clone, which the channel calls on every message a stream sends, copies: a sender may
// reuse a message once SendMsg returns (a download's chunk buffer), as gRPC allows. Copy
// fills the receiver's message from a value the sender is done with: a stream message
// Clone already copied, the reply a unary handler returned, or the request of a unary
// call, which the caller does not touch while the call runs (grpc.ClientConnInterface)
// and a handler only reads; so it hands over the fields without copying them, which
// keeps the bytes of an upload or download from being copied twice.
type handOver struct{}

var _ inprocgrpc.Cloner = handOver{}

func (handOver) Clone(in any) (any, error) {
	m, ok := in.(proto.Message)
	if !ok {
		return nil, status.Errorf(codes.Internal, "in-process call: %T is not a protobuf message", in)
	}
	return proto.Clone(m), nil
}

func (handOver) Copy(out, in any) error {
	dst, ok1 := out.(proto.Message)
	src, ok2 := in.(proto.Message)
	if !ok1 || !ok2 {
		return status.Errorf(codes.Internal, "in-process call: %T into %T: not protobuf messages", in, out)
	}
	if dst == src {
		return nil
	}
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	if d.Descriptor().FullName() != s.Descriptor().FullName() {
		return status.Errorf(codes.Internal, "in-process call: a %s cannot be received as a %s", s.Descriptor().FullName(), d.Descriptor().FullName())
	}
	// As decoding a message from the wire does: the receiver's message holds exactly
	// what was sent.
	proto.Reset(dst)
	if d.Type() != s.Type() {
		// Two Go types for one message (a dynamic one, say): nothing to share, so
		// through the wire format.
		b, err := proto.Marshal(src)
		if err != nil {
			return status.Errorf(codes.Internal, "in-process call: %v", err)
		}
		return proto.Unmarshal(b, dst)
	}
	handover.Fields(d, s)
	return nil
}
