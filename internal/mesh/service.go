package mesh

import (
	"context"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/config"
)

// Deps is what a service receives from the process that runs it.
type Deps struct {
	Config         config.Config
	Logger         *slog.Logger
	DB             *pgxpool.Pool
	Redis          redis.UniversalClient
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Peers holds a connection to each service named in Service.Needs.
	Peers map[string]*grpc.ClientConn
	// Getenv reads the service's own settings (os.Getenv in production). A service
	// validates them in Register and fails the start with a message naming the variable.
	Getenv func(string) string
}

// Service describes one service of the mesh to the process that runs it. Every service
// package exposes one, so that knowing how one service is wired means knowing all five.
type Service struct {
	// Name is the service's name ("auth"); it is also its PostgreSQL schema.
	Name string
	// Needs are the services it calls.
	Needs []string
	// Migrations holds its NNNN_name.up.sql / .down.sql files.
	Migrations fs.FS
	// Start builds the service from deps and starts its background work.
	Start func(ctx context.Context, deps Deps) (*Instance, error)
}

// Instance is a built service, ready to be served.
type Instance struct {
	// Register registers its gRPC services.
	Register func(reg grpc.ServiceRegistrar)
	// Stop ends its background work on shutdown; nil when it has none.
	Stop func(context.Context) error
	// Tokens and APIKeys, when set, are how the service's own server checks credentials
	// instead of asking the auth service: auth checks them against its own keys and
	// database, and cannot ask itself before it serves.
	Tokens  *authn.Verifier
	APIKeys authn.Introspector
}
