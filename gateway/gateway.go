package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/backplane/backplane/internal/clientip"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/service"
)

// Config holds the gateway's dependencies and edge settings.
type Config struct {
	Logger *slog.Logger
	// Server configures the gRPC chain both front doors run (telemetry, validation, and
	// the Authenticate and Admit slots, to which the gateway prepends its own).
	Server grpcserver.Config
	// Backends maps an owning service name ("auth") to a connection to it: over the
	// network, or in process when the service runs in the edge's process.
	Backends map[string]grpc.ClientConnInterface
	// APIs are the public services to route, each to its owner's backend; normally
	// those of every service of the mesh.
	APIs []service.API
	// ClientIP resolves callers' addresses; nil trusts no proxy.
	ClientIP *clientip.Resolver
	// CORS lists the browser origins allowed to call the REST door.
	CORS CORSConfig
	// MaxBodyBytes caps REST request bodies; zero means 1 MiB.
	MaxBodyBytes int64
	// MaxCallTimeout caps how long the edge waits for a unary call, whatever deadline the
	// client asked for; zero means 30s. Streams are not capped.
	MaxCallTimeout time.Duration
	// TLS says the front doors terminate TLS themselves (turns on HSTS).
	TLS bool
	// RateLimit limits callers; nil admits everyone (tests of other policies).
	RateLimit *RateLimitConfig
	// APICalls counts users' calls on the api_calls meter and refuses those past its
	// quota (usage.go); nil counts nothing. Gateway.Stop sends the last counts.
	APICalls *APICallsConfig
	// DevPages serves minimal /verify-email and /reset-password pages, which complete
	// the emailed links' flows in a browser: for `backplane dev` only, where the product
	// has no pages of its own yet.
	DevPages bool
	// PublicURL is where users reach the product (BACKPLANE_PUBLIC_URL): the server the
	// served OpenAPI document names. Empty keeps the document's own.
	PublicURL string
}

// Gateway holds both front doors.
type Gateway struct {
	rest  http.Handler
	grpc  *grpcserver.Server
	calls *apiCallMeter // nil when calls are not counted
}

// New builds both front doors over one interceptor chain.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Logger == nil {
		return nil, errors.New("gateway: Logger is required")
	}
	if err := cfg.CORS.validate(); err != nil {
		return nil, err
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP, _ = clientip.NewResolver(nil)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxCallTimeout == 0 {
		cfg.MaxCallTimeout = 30 * time.Second
	}
	routes, err := buildRoutes(cfg.APIs, cfg.Backends, cfg.MaxCallTimeout)
	if err != nil {
		return nil, err
	}

	sc := cfg.Server
	sc.DisableReflection = true
	sc.Authenticate.Unary = append([]grpc.UnaryServerInterceptor{cfg.ClientIP.UnaryServerInterceptor()}, sc.Authenticate.Unary...)
	sc.Authenticate.Stream = append([]grpc.StreamServerInterceptor{cfg.ClientIP.StreamServerInterceptor()}, sc.Authenticate.Stream...)
	if cfg.RateLimit != nil {
		if cfg.RateLimit.Limiter == nil || cfg.RateLimit.Policy == nil {
			return nil, errors.New("gateway: RateLimit needs a Limiter and a Policy")
		}
		rl := &rateLimiter{cfg: *cfg.RateLimit}
		sc.Admit.Unary = append(sc.Admit.Unary, rl.unary())
		sc.Admit.Stream = append(sc.Admit.Stream, rl.stream())
	}
	var calls *apiCallMeter
	if cfg.APICalls != nil {
		if calls, err = newAPICallMeter(*cfg.APICalls, cfg.Logger); err != nil {
			return nil, err
		}
		sc.Admit.Unary = append(sc.Admit.Unary, calls.unary())
		sc.Admit.Stream = append(sc.Admit.Stream, calls.stream())
	}
	srv, err := grpcserver.New(sc)
	if err != nil {
		return nil, err
	}
	var names []string
	door := struct{}{} // the door's handlers need no service value; they hold their routes
	for _, desc := range serviceDescs(routes, door) {
		srv.Registrar().RegisterService(desc, door)
		names = append(names, desc.ServiceName)
	}
	if err := registerReflection(srv.Registrar(), routes); err != nil {
		return nil, err
	}

	browser, err := browserRPC(srv.Registrar(), names)
	if err != nil {
		return nil, err
	}
	conn := &chainConn{routes: routes, unary: srv.UnaryChain(), stream: srv.StreamChain()}
	rest, err := newREST(ctx, cfg, conn, browser, names)
	if err != nil {
		return nil, err
	}
	if calls != nil {
		calls.start(ctx)
	}
	return &Gateway{rest: rest, grpc: srv, calls: calls}, nil
}

// REST is the REST front door. It also takes gRPC-Web and Connect calls to the gRPC
// front door's services, at their method paths, for browsers.
func (g *Gateway) REST() http.Handler { return g.rest }

// GRPC is the native gRPC front door.
func (g *Gateway) GRPC() *grpcserver.Server { return g.grpc }
