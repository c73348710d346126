package grpcserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/backplane/backplane/internal/validation"
)

// streamWorkers is how many goroutines each server keeps for running calls: enough for
// the callers a small deployment has in flight at once; idle, each is a parked goroutine.
const streamWorkers = 32

// Config holds a server's dependencies. Logger, the telemetry providers and Validator are
// required; the interceptor slots are optional.
type Config struct {
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
	Validator      *validation.Validator

	// Authenticate runs after recovery and before validation: the place for
	// authentication and authorization, which must reject a caller before it learns
	// anything about what a valid request looks like.
	Authenticate Interceptors
	// Admit runs after validation: admission control such as rate limiting, which should
	// count only well-formed requests from known callers.
	Admit Interceptors

	// DisableReflection leaves the reflection service unregistered, for a caller that
	// registers its own (the edge lists only what it exposes).
	DisableReflection bool

	// Limits bound messages, metadata, streams and connections; zero fields take the
	// defaults, the same as the REST door's.
	Limits Limits

	// Options are appended to the server's own options (credentials), and override them.
	Options []grpc.ServerOption
}

// Interceptors is a slot of unary and stream interceptors, run in order.
type Interceptors struct {
	Unary  []grpc.UnaryServerInterceptor
	Stream []grpc.StreamServerInterceptor
}

func (c Config) validate() error {
	switch {
	case c.Logger == nil:
		return errors.New("grpcserver: Logger is required")
	case c.TracerProvider == nil || c.MeterProvider == nil || c.Propagator == nil:
		return errors.New("grpcserver: TracerProvider, MeterProvider and Propagator are required")
	case c.Validator == nil:
		return errors.New("grpcserver: Validator is required")
	case c.Limits.MaxMessageBytes < 0 || c.Limits.MaxConnections < 0 || c.Limits.HandshakeTimeout < 0:
		return errors.New("grpcserver: Limits must not be negative")
	}
	return nil
}

// Server is a gRPC server with health checking and reflection registered.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
	log    *slog.Logger
	unary  grpc.UnaryServerInterceptor
	stream grpc.StreamServerInterceptor
	limits Limits
	drain  *drainer
}

// New builds a server. Register services on Registrar before calling Serve.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	access := &accessLog{log: cfg.Logger}
	unary := []grpc.UnaryServerInterceptor{
		requestIDUnary(),
		access.unary,
		recoveryUnary(cfg.Logger),
		normalizeUnary(cfg.Logger),
	}
	unary = append(unary, cfg.Authenticate.Unary...)
	if len(cfg.Authenticate.Unary) > 0 {
		unary = append(unary, access.noteUnary)
	}
	unary = append(unary, cfg.Validator.UnaryServerInterceptor())
	unary = append(unary, cfg.Admit.Unary...)

	drain := newDrainer()
	stream := []grpc.StreamServerInterceptor{
		// Outermost, so that a stream ended by draining is, to everything inside, a
		// call whose context ended, not a failure to log as one.
		drain.intercept,
		requestIDStream(),
		access.stream,
		recoveryStream(cfg.Logger),
		normalizeStream(cfg.Logger),
	}
	stream = append(stream, cfg.Authenticate.Stream...)
	if len(cfg.Authenticate.Stream) > 0 {
		stream = append(stream, access.noteStream)
	}
	stream = append(stream, cfg.Validator.StreamServerInterceptor())
	stream = append(stream, cfg.Admit.Stream...)
	unaryChain, streamChain := chainUnary(unary), chainStream(stream)

	methods := &registeredMethods{}
	opts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(cfg.TracerProvider),
			otelgrpc.WithMeterProvider(cfg.MeterProvider),
			otelgrpc.WithPropagators(cfg.Propagator),
			otelgrpc.WithFilter(telemetryFilter(methods)),
		)),
		grpc.UnaryInterceptor(unaryChain),
		grpc.StreamInterceptor(streamChain),
		// Keepalive enforcement stops misbehaving clients from pinging the server to death,
		// while letting well-behaved mobile clients keep long streams open.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second}),
		// Calls run on long-lived goroutines instead of one new goroutine each: a new
		// goroutine starts with a small stack that the interceptor chain outgrows, and
		// copying it as it grows cost about 6 % of the gRPC door's CPU. A call arriving
		// while every worker is busy still gets a goroutine of its own.
		grpc.NumStreamWorkers(streamWorkers),
	}
	limits := cfg.Limits.withDefaults()
	opts = append(opts, limits.serverOptions()...)
	opts = append(opts, cfg.Options...)

	gs := grpc.NewServer(opts...)
	methods.server = gs
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	if !cfg.DisableReflection {
		reflection.Register(gs)
	}
	return &Server{grpc: gs, health: hs, log: cfg.Logger, unary: unaryChain, stream: streamChain, limits: limits, drain: drain}, nil
}

// UnaryChain is the server's whole unary interceptor chain, for running the same policy
// in process (the edge's REST door) without a network hop.
func (s *Server) UnaryChain() grpc.UnaryServerInterceptor { return s.unary }

// StreamChain is the server's whole stream interceptor chain; see UnaryChain.
func (s *Server) StreamChain() grpc.StreamServerInterceptor { return s.stream }

// Registrar is where services are registered.
func (s *Server) Registrar() *grpc.Server { return s.grpc }

// Health is the health service, for marking individual services (not) serving.
func (s *Server) Health() *health.Server { return s.health }

// Serve accepts connections on lis until Shutdown, at most Limits.MaxConnections at once.
// Every registered service is reported SERVING from the moment Serve is called.
func (s *Server) Serve(lis net.Listener) error {
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	err := s.grpc.Serve(s.limits.listener(lis))
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Drain turns every service NOT_SERVING, so load balancers stop sending new calls, and
// ends every open server stream at once with UNAVAILABLE, on which clients reconnect
// elsewhere; also the streams of the REST door, which run through StreamChain. It
// returns how many streams it ended. A process drains all its servers before stopping
// any, since a front door's stream waits on the service behind it.
func (s *Server) Drain() int {
	s.health.Shutdown()
	return s.drain.drain()
}

// Shutdown drains the server, lets in-flight calls finish until ctx is done, then cuts
// whatever is left.
func (s *Server) Shutdown(ctx context.Context) {
	s.Drain()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.WarnContext(ctx, "grpc graceful stop timed out; closing remaining calls")
		s.grpc.Stop()
		<-done
	}
}
