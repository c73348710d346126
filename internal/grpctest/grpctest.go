// Package grpctest serves gRPC services in tests the way Backplane serves them in
// production, and calls them the way Backplane's services call each other: a
// grpcserver.Server with the whole interceptor chain (request ids, access log, recovery,
// error normalisation, the caller's checks, validation) on a loopback listener, and a
// client connection made by grpcclient. Everything it starts stops when the test ends.
//
// A test that wants to see what its service does to a caller should go through this
// harness rather than call the handlers: the chain is part of what a caller gets.
package grpctest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/backplane/backplane/internal/grpcclient"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/validation"
)

// Authenticator is the pair of interceptors that checks every caller, as
// *authn.Interceptor provides. It is an interface, rather than authn's type, only so that
// authn's own tests can use this package without an import cycle.
type Authenticator interface {
	Unary() grpc.UnaryServerInterceptor
	Stream() grpc.StreamServerInterceptor
}

// Option changes how [Start] builds and dials the server.
type Option func(*options)

type options struct {
	configure []func(*grpcserver.Config)
	dial      []grpc.DialOption
}

// WithAuthenticator puts a's interceptors in the server's authentication slot, where the
// process that runs a service puts its authn.Interceptor. Without it, nobody's
// credentials are checked.
func WithAuthenticator(a Authenticator) Option {
	return WithServerConfig(func(c *grpcserver.Config) {
		c.Authenticate = grpcserver.Interceptors{
			Unary:  []grpc.UnaryServerInterceptor{a.Unary()},
			Stream: []grpc.StreamServerInterceptor{a.Stream()},
		}
	})
}

// WithLogger gives the server a logger, for a test that reads what it logs. Without it
// logs are written nowhere.
func WithLogger(log *slog.Logger) Option {
	return WithServerConfig(func(c *grpcserver.Config) { c.Logger = log })
}

// WithServerConfig changes the server's configuration after [ServerConfig] has filled it
// in, for what the other options do not cover (admission interceptors, server options).
func WithServerConfig(configure func(*grpcserver.Config)) Option {
	return func(o *options) { o.configure = append(o.configure, configure) }
}

// WithDialOptions adds options to the dial of [Server.Conn], such as
// grpc.WithPerRPCCredentials with a service's token credentials, which is how one
// service calls another's INTERNAL RPCs.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// Server is a server under test and a connection to it.
type Server struct {
	// GRPC is the running server: its Health, or its Shutdown for a test of stopping.
	GRPC *grpcserver.Server
	// Addr is the loopback address it listens on.
	Addr string
	// Conn is a client connection to it, made by [Dial].
	Conn *grpc.ClientConn
}

// ServerConfig is the configuration [Start] builds its server from: the production
// chain with the real validator, the production log handler writing nowhere (so what
// logging costs and does, redaction included, still happens), no-op telemetry, and no
// authentication. Tests that build a server through other code (the gateway's front
// door) start from it too.
func ServerConfig(t testing.TB) grpcserver.Config {
	t.Helper()
	v, err := validation.New()
	if err != nil {
		t.Fatalf("grpctest: validator: %v", err)
	}
	return grpcserver.Config{
		Logger:         logging.New(io.Discard, logging.Options{}),
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  noop.NewMeterProvider(),
		Propagator:     propagation.TraceContext{},
		Validator:      v,
	}
}

// Start builds a server from [ServerConfig] and opts, lets register add the services
// under test, serves it and dials it.
func Start(t testing.TB, register func(grpc.ServiceRegistrar), opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg := ServerConfig(t)
	for _, configure := range o.configure {
		configure(&cfg)
	}
	srv, err := grpcserver.New(cfg)
	if err != nil {
		t.Fatalf("grpctest: %v", err)
	}
	register(srv.Registrar())
	return Serve(t, srv, o.dial...)
}

// Serve serves a server built elsewhere (with its services registered) on a loopback
// listener and dials it with dialOpts. The server shuts down when the test ends, after
// the connection closes.
func Serve(t testing.TB, srv *grpcserver.Server, dialOpts ...grpc.DialOption) *Server {
	t.Helper()
	var lc net.ListenConfig
	lis, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("grpctest: listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		// Long enough for calls the test left running to end, short enough that a
		// stream the test forgot does not hang the run.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("grpctest: serve: %v", err)
		}
	})
	s := &Server{GRPC: srv, Addr: lis.Addr().String()}
	s.Conn = s.Dial(t, dialOpts...)
	return s
}

// Dial makes another connection to the server, for a second caller with credentials of
// its own.
func (s *Server) Dial(t testing.TB, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	return Dial(t, s.Addr, opts...)
}

// Dial connects to target as one Backplane service connects to another (grpcclient:
// deadlines, request-id propagation, retries of UNAVAILABLE), with no-op telemetry. The
// connection closes when the test ends.
func Dial(t testing.TB, target string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcclient.Dial(target, grpcclient.Config{
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  noop.NewMeterProvider(),
		Propagator:     propagation.TraceContext{},
		Options:        opts,
	})
	if err != nil {
		t.Fatalf("grpctest: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Bearer returns ctx with an access token or API key attached as a caller sends it.
func Bearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}
