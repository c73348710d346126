package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"google.golang.org/grpc"

	"github.com/backplane/backplane/internal/catalog"
	"github.com/backplane/backplane/internal/grpcserver"
)

// Config holds the gateway's dependencies.
type Config struct {
	Logger *slog.Logger
	// Server configures the gRPC front door (telemetry, validation, interceptors).
	Server grpcserver.Config
	// Backends maps an owning service name ("auth") to a connection to it.
	Backends map[string]*grpc.ClientConn
	// Entries are the public services to route; normally catalog.Entries().
	Entries []catalog.Entry
	// HTTPMiddleware wraps the REST front door, outermost first.
	HTTPMiddleware []func(http.Handler) http.Handler
}

// Gateway holds both front doors.
type Gateway struct {
	rest http.Handler
	grpc *grpcserver.Server
}

// New builds the REST handler and the gRPC proxy for every entry.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Logger == nil {
		return nil, errors.New("gateway: Logger is required")
	}
	for _, e := range cfg.Entries {
		if cfg.Backends[e.Owner] == nil {
			return nil, fmt.Errorf("gateway: no backend connection for %s (serving %s)", e.Owner, e.Service.FullName())
		}
	}
	rest, err := newREST(ctx, cfg)
	if err != nil {
		return nil, err
	}
	srv, err := grpcserver.New(cfg.Server)
	if err != nil {
		return nil, err
	}
	for _, e := range cfg.Entries {
		desc, err := proxyDesc(e.Service, cfg.Backends[e.Owner])
		if err != nil {
			return nil, err
		}
		if desc == nil {
			continue // nothing of this service is edge-exposed
		}
		srv.Registrar().RegisterService(desc, struct{}{})
	}
	return &Gateway{rest: rest, grpc: srv}, nil
}

// REST is the REST front door.
func (g *Gateway) REST() http.Handler { return g.rest }

// GRPC is the native gRPC front door.
func (g *Gateway) GRPC() *grpcserver.Server { return g.grpc }
