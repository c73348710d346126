package mesh

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fullstorydev/grpchan/inprocgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
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
	// unary serves unary calls without the channel (localUnary); it is set with ch.
	unary atomic.Pointer[localUnary]
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
	if u := c.unary.Load(); u != nil {
		if m, ok := u.methods[method]; ok {
			return u.invoke(ctx, method, m, req, reply, opts)
		}
	}
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
	table := &methodTable{ServiceRegistrar: ch, methods: map[string]localMethod{}}
	inst.Register(table)
	healthpb.RegisterHealthServer(table, srv.Health())

	known := map[string]bool{}
	for svc, info := range ch.GetServiceInfo() {
		for _, m := range info.Methods {
			known["/"+svc+"/"+m.Name] = true
		}
	}
	client, server := p.providers(lc.caller), p.providers(lc.name)
	serverStats := beginTimes{otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(server.TracerProvider()),
		otelgrpc.WithMeterProvider(server.MeterProvider()),
		otelgrpc.WithPropagators(server.Propagator()),
		otelgrpc.WithFilter(telemetry.GRPCFilter(func(m string) bool { return known[m] })),
	)}
	ch.WithClientStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(client.TracerProvider()),
		otelgrpc.WithMeterProvider(client.MeterProvider()),
		otelgrpc.WithPropagators(client.Propagator()),
		otelgrpc.WithFilter(telemetry.GRPCFilter(nil)),
	)).WithServerStatsHandler(serverStats)
	lc.unary.Store(&localUnary{
		methods: table.methods, intercept: unary, from: from,
		stats: serverStats.Handler,
	})
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

// localUnary runs a unary call to a service this process serves on the caller's own
// goroutine: through the service's interceptor chain (every policy, the vouch,
// validation), with the in-process peer, the caller's metadata and service token, and
// the service's server telemetry, as the channel does, but without the goroutine, the
// channel of frames and the goroutine watching the caller's context that the channel
// spends on every call. Those, and a second otelgrpc handler on the caller's side, were
// a fifth of the gRPC door's CPU at 16 callers. The caller's span is not repeated by a
// client span of its own: the trace context and baggage reach the service as they
// would through the call's metadata, so the service's span still hangs under the
// edge's. The caller's deadline and cancellation reach the handler through its
// context, as over the network; a handler that ignored them would hold its caller as
// long as it ran, where the channel let the caller go.
type localUnary struct {
	methods   map[string]localMethod // by full method name
	intercept grpc.UnaryServerInterceptor
	from      *peer.Peer
	// stats is the service's otelgrpc server handler: its spans and the
	// rpc.server.call.duration series that alerts and dashboards read.
	stats stats.Handler
}

// localMethod is one unary method's handler and the service value it is called on.
type localMethod struct {
	srv     any
	handler grpc.MethodHandler
	// uri is what per-call credentials are asked for, made once rather than per call.
	uri string
}

// methodTable registers services on the channel (for streams) and keeps their unary
// methods for localUnary.
type methodTable struct {
	grpc.ServiceRegistrar
	methods map[string]localMethod
}

func (t *methodTable) RegisterService(desc *grpc.ServiceDesc, impl any) {
	t.ServiceRegistrar.RegisterService(desc, impl)
	for _, m := range desc.Methods {
		method := "/" + desc.ServiceName + "/" + m.MethodName
		t.methods[method] = localMethod{srv: impl, handler: m.Handler, uri: "inproc:0" + method}
	}
}

//nolint:contextcheck // the service's context keeps none of the caller's values on purpose (callerEnd)
func (u *localUnary) invoke(ctx context.Context, method string, m localMethod, req, reply any, opts []grpc.CallOption) error {
	if msg, ok := req.(proto.Message); !ok || !msg.ProtoReflect().IsValid() {
		return status.Errorf(codes.Internal, "in-process call: the request is not a protobuf message")
	}
	md, _ := metadata.FromOutgoingContext(ctx) // a copy of its own, keys lowercased
	if md == nil {
		md = metadata.MD{}
	}
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.PerRPCCredsCallOption:
			kv, err := o.Creds.GetRequestMetadata(ctx, m.uri)
			if err != nil {
				if _, ok := status.FromError(err); ok {
					return err
				}
				return status.Errorf(codes.Unavailable, "in-process call: per-call credentials: %v", err)
			}
			for k, v := range kv {
				k = strings.ToLower(k)
				md[k] = append(md[k], v)
			}
		case grpc.PeerCallOption:
			*o.PeerAddr = peer.Peer{Addr: loopback}
		}
	}

	// The service sees the caller's deadline and cancellation, none of its context's
	// values (the edge's principal is the edge's, not the service's word), and a
	// context that ends when the call does, as a server's does.
	sctx, cancel := context.WithCancel(callerEnd{ctx})
	defer cancel()
	// The trace context and baggage, which a client handler would carry in the
	// metadata, are handed over as they are; and the service's handler tags the call
	// before the metadata is attached, since its extraction would copy all of the
	// metadata to look for them.
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		sctx = trace.ContextWithRemoteSpanContext(sctx, sc)
	}
	if b := baggage.FromContext(ctx); b.Len() > 0 {
		sctx = baggage.ContextWithBaggage(sctx, b)
	}
	// What the stats handler is told, in one allocation rather than three.
	st := &callStats{tag: stats.RPCTagInfo{FullMethodName: method}, begin: stats.Begin{BeginTime: time.Now()}}
	if u.stats != nil {
		sctx = u.stats.TagRPC(sctx, &st.tag)
	}
	sts := handover.NewTransport(method)
	sctx = grpc.NewContextWithServerTransportStream(peer.NewContext(metadata.NewIncomingContext(sctx, md), u.from), sts)
	if u.stats != nil {
		u.stats.HandleRPC(sctx, &st.begin)
	}
	resp, err := m.handler(m.srv, sctx, func(in any) error { return handOver{}.Copy(in, req) }, u.intercept)
	if err == nil && resp == nil {
		err = status.Errorf(codes.Internal, "%s returned neither a response nor an error", method)
	}
	if _, ok := status.FromError(err); err != nil && !ok {
		// As a gRPC server answers a handler's plain error: a context's end becomes
		// CANCELED or DEADLINE_EXCEEDED, anything else UNKNOWN, so the caller sees the
		// same codes in process as over the network.
		err = status.FromContextError(err).Err()
	}
	if u.stats != nil {
		st.end = stats.End{BeginTime: st.begin.BeginTime, EndTime: time.Now(), Error: err}
		u.stats.HandleRPC(sctx, &st.end)
	}
	sts.Deliver(opts)
	if err != nil {
		return err
	}
	return handOver{}.Copy(reply, resp)
}

// callStats are the stats of one in-process unary call.
type callStats struct {
	tag   stats.RPCTagInfo
	begin stats.Begin
	end   stats.End
}

// callerEnd is a caller's context as the service it calls in process sees it: its
// deadline and its end, none of its values.
type callerEnd struct{ caller context.Context }

func (c callerEnd) Deadline() (time.Time, bool) { return c.caller.Deadline() }
func (c callerEnd) Done() <-chan struct{}       { return c.caller.Done() }
func (c callerEnd) Err() error                  { return c.caller.Err() }
func (callerEnd) Value(any) any                 { return nil }

// AfterFunc lets context.WithCancel tie the service's context to the caller's end
// without a goroutine per call, which it starts for a parent it cannot see into.
func (c callerEnd) AfterFunc(f func()) func() bool { return context.AfterFunc(c.caller, f) }

// beginTimes hands otelgrpc, on a call's end, the time the call began, which the
// in-process channel reports only at the beginning: without it a stream served in
// process would be measured as lasting since the year 1.
type beginTimes struct{ stats.Handler }

type beginTimeKey struct{}

func (b beginTimes) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(b.Handler.TagRPC(ctx, info), beginTimeKey{}, new(time.Time))
}

func (b beginTimes) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	if at, ok := ctx.Value(beginTimeKey{}).(*time.Time); ok {
		switch s := rs.(type) {
		case *stats.Begin:
			*at = s.BeginTime
		case *stats.End:
			if s.BeginTime.IsZero() {
				end := *s
				end.BeginTime = *at
				rs = &end
			}
		}
	}
	b.Handler.HandleRPC(ctx, rs)
}
