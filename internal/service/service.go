// Package service is the contract between a Backplane service and the process that runs
// it. Each service package describes itself with one Definition (its name, the services
// it calls, its migrations, its public API, how to read its settings and how to start);
// the process assembler (internal/mesh) runs any set of them from that description alone.
//
// A service depends on this package, its own contract and store, and the small shared
// packages; never on the edge or on the assembler, which depend on it.
//
// Starting is two steps, so that configuration fails before anything is opened: LoadConfig
// reads and checks the service's settings together with the rest of the process's
// configuration; only when all of it is good does the process open databases, Redis and
// listeners, and call the Start that LoadConfig returned.
package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/jobs"
)

// Definition is everything the process needs to know about one service. Build it with
// Define, which keeps the service's configuration typed.
type Definition struct {
	// Name is the service's name ("auth"); it is also its PostgreSQL schema and, upper-
	// cased, the middle of BACKPLANE_<NAME>_ADDR.
	Name string
	// Needs are the services it calls; Deps.Peers holds a connection to each.
	Needs []string
	// Authority marks the service that issues access tokens and API keys. Every other
	// server checks credentials by asking it (its key set and API-key introspection),
	// so every process dials it; its own Instance checks them locally.
	Authority bool
	// Migrations holds its NNNN_name.up.sql / .down.sql files; nil for none yet.
	Migrations fs.FS
	// Jobs marks a service that runs background work on River (internal/jobs): the
	// process migrates its job schema (jobs.Schema(Name)) right after its own, and its
	// Instance hands back its jobs client for the River UI.
	Jobs bool
	// Upgrade, when set, carries the service's existing data forward where SQL alone
	// cannot, such as turning the rows of a retired table into River jobs. The process
	// runs it whenever it migrates the service (`backplane migrate`, or a start that
	// migrates): after Migrations and, with Jobs, after the job schema, holding the
	// migration lock, so one runs at a time. It must find nothing to do once its work
	// is done. db is a pool like Deps.DB.
	Upgrade func(ctx context.Context, db *pgxpool.Pool, log *slog.Logger) error
	// APIs are the public gRPC services it serves, which the edge routes to it.
	APIs []API
	// LoadConfig reads and checks the service's settings, before anything is opened,
	// and returns what starts the service with them. Errors name the variable.
	LoadConfig func(env *config.Env) (Start, error)
	// ServeRequires names the variables `backplane serve` refuses to start the service
	// without, each with what it is for; dev mode may go without them (see CheckServe).
	ServeRequires map[string]string
}

// Start builds a service from its loaded configuration and deps, and starts its
// background work.
type Start func(ctx context.Context, deps Deps) (*Instance, error)

// API is one public gRPC service.
type API struct {
	// Owner is the service that serves it; Define fills it in.
	Owner string
	// Service describes its RPCs, HTTP mappings and access policies.
	Service protoreflect.ServiceDescriptor
	// RegisterREST mounts its google.api.http mappings on a grpc-gateway mux, forwarding
	// through conn.
	RegisterREST func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error
}

// PublicAPI describes a public gRPC service from its generated code: its descriptor, its
// client constructor and its grpc-gateway handler registration, as in
//
//	service.PublicAPI(authv1.File_backplane_auth_v1_auth_proto.Services().ByName("AuthService"),
//		authv1.NewAuthServiceClient, authv1.RegisterAuthServiceHandlerClient)
func PublicAPI[Client any](
	desc protoreflect.ServiceDescriptor,
	newClient func(grpc.ClientConnInterface) Client,
	registerREST func(context.Context, *runtime.ServeMux, Client) error,
) API {
	return API{
		Service: desc,
		RegisterREST: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return registerREST(ctx, mux, newClient(conn))
		},
	}
}

// Spec is a service's description with its own configuration type C.
type Spec[C any] struct {
	Name       string
	Needs      []string
	Authority  bool
	Migrations fs.FS
	Jobs       bool
	Upgrade    func(ctx context.Context, db *pgxpool.Pool, log *slog.Logger) error
	APIs       []API
	// LoadConfig is the service package's exported LoadConfig.
	LoadConfig func(env *config.Env) (C, error)
	// Start builds and starts the service, typically with its New.
	Start func(ctx context.Context, cfg C, deps Deps) (*Instance, error)
	// ServeRequires is Definition.ServeRequires.
	ServeRequires map[string]string
}

// Define turns a service's typed Spec into the Definition the process runs. The
// configuration travels from LoadConfig to Start inside a closure, so a service never
// type-asserts its own Config.
func Define[C any](s Spec[C]) Definition {
	apis := make([]API, len(s.APIs))
	for i, a := range s.APIs {
		a.Owner = s.Name
		apis[i] = a
	}
	return Definition{
		Name:          s.Name,
		Needs:         s.Needs,
		Authority:     s.Authority,
		Migrations:    s.Migrations,
		Jobs:          s.Jobs,
		Upgrade:       s.Upgrade,
		APIs:          apis,
		ServeRequires: s.ServeRequires,
		LoadConfig: func(env *config.Env) (Start, error) {
			cfg, err := s.LoadConfig(env)
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context, deps Deps) (*Instance, error) {
				return s.Start(ctx, cfg, deps)
			}, nil
		},
	}
}

// Deps is what a service receives from the process that runs it: connections and the
// few process-wide settings services read. Its own settings come from its Config.
type Deps struct {
	Logger *slog.Logger
	// DB is a pool whose search_path is the service's own schema, migrated.
	DB             *pgxpool.Pool
	Redis          redis.UniversalClient
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Peers holds a connection to each service named in Definition.Needs. Every call
	// on it carries this process's service credential.
	Peers map[string]*grpc.ClientConn
	// PublicURL is where users reach the product: the root of every emailed link
	// (BACKPLANE_PUBLIC_URL).
	PublicURL string
	// Issuer is the iss claim of access tokens, which the authority signs with
	// (BACKPLANE_JWT_ISSUER, else PublicURL).
	Issuer string
	// DataDir holds local state in dev mode, such as the mailbox (BACKPLANE_DATA_DIR).
	DataDir string
}

// Instance is a started service, ready to be served.
type Instance struct {
	// Register registers its gRPC services.
	Register func(reg grpc.ServiceRegistrar)
	// Stop ends its background work on shutdown; nil when it has none.
	Stop func(context.Context) error
	// Tokens and APIKeys, when set, are how the service's own server checks credentials
	// instead of asking the authority: the authority checks them against its own keys
	// and database, and cannot ask itself before it serves.
	Tokens  *authn.Verifier
	APIKeys authn.Introspector
	// Jobs is the service's River client when its Definition says Jobs; the process
	// shows its queues in the River UI on the admin port.
	Jobs *jobs.Client
	// Ready, when set, is a readiness check of a dependency the service reaches on its
	// own, such as the asset service's bucket: /readyz fails while it fails.
	Ready func(context.Context) error
}

// Loaded is a service whose configuration has been read and checked: all that is left
// is to start it.
type Loaded struct {
	Definition
	// Start starts it with the configuration read.
	Start Start
}

// Load reads the configuration of each of defs through getenv and returns them ready to
// start, or every configuration error of every service, joined.
func Load(getenv func(string) string, defs ...Definition) ([]Loaded, error) {
	out := make([]Loaded, 0, len(defs))
	var errs []error
	for _, d := range defs {
		if d.LoadConfig == nil {
			errs = append(errs, fmt.Errorf("service %s: no LoadConfig (build its Definition with service.Define)", d.Name))
			continue
		}
		start, err := d.LoadConfig(config.NewEnv(getenv))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Loaded{Definition: d, Start: start})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Definitions returns the definitions of loaded services.
func Definitions(loaded []Loaded) []Definition {
	out := make([]Definition, len(loaded))
	for i, l := range loaded {
		out[i] = l.Definition
	}
	return out
}

// APIs returns the public APIs of every one of defs, each naming its owner.
func APIs(defs []Definition) []API {
	var out []API
	for _, d := range defs {
		out = append(out, d.APIs...)
	}
	return out
}

// Names returns the names of defs, in order.
func Names(defs []Definition) []string {
	out := make([]string, len(defs))
	for i, d := range defs {
		out[i] = d.Name
	}
	return out
}
