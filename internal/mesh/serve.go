package mesh

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"google.golang.org/grpc"

	"github.com/backplane/backplane/internal/catalog"
	"github.com/backplane/backplane/internal/config"
)

// Serve runs one piece of the mesh for production: "gateway" or a service name. It
// never falls back to embedded stand-ins; a missing URL is a start-up error.
func Serve(ctx context.Context, cfg config.Config, getenv func(string) string, log *slog.Logger, tel Telemetry, services []Service, piece string) error {
	if piece == "gateway" {
		return serveGateway(ctx, cfg, log, tel)
	}
	svc, ok := servicesByName(services)[piece]
	if !ok {
		return fmt.Errorf("unknown piece %q: want gateway or one of %v", piece, names(services))
	}
	return serveService(ctx, cfg, getenv, log, tel, svc)
}

func serveGateway(ctx context.Context, cfg config.Config, log *slog.Logger, tel Telemetry) error {
	owners := catalog.Owners()
	if err := cfg.Require(false, false, owners...); err != nil {
		return err
	}
	p, err := NewProcess(log, tel)
	if err != nil {
		return err
	}
	defer p.Shutdown(cfg.ShutdownTimeout)
	ls, err := listen(cfg.HTTPAddr, cfg.GRPCAddr, cfg.AdminAddr)
	if err != nil {
		return err
	}
	p.ServeHTTP("admin", p.AdminHandler(), ls[2], nil)
	backends := map[string]*grpc.ClientConn{}
	for _, o := range owners {
		if backends[o], err = p.dial(o, cfg.ServiceAddrs[o]); err != nil {
			return err
		}
	}
	if err := p.startGateway(ctx, cfg, backends, ls[0], ls[1]); err != nil {
		return err
	}
	return p.Wait(ctx, cfg.ShutdownTimeout)
}

func serveService(ctx context.Context, cfg config.Config, getenv func(string) string, log *slog.Logger, tel Telemetry, svc Service) error {
	if err := cfg.Require(true, true, svc.Needs...); err != nil {
		return err
	}
	p, err := NewProcess(log, tel)
	if err != nil {
		return err
	}
	defer p.Shutdown(cfg.ShutdownTimeout)
	ls, err := listen(cfg.GRPCAddr, cfg.AdminAddr)
	if err != nil {
		return err
	}
	p.ServeHTTP("admin", p.AdminHandler(), ls[1], nil)
	pool, err := p.openDatabase(ctx, cfg.DatabaseURL, svc.Name)
	if err != nil {
		return err
	}
	rdb, err := p.openRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	if err := p.migrate(ctx, pool, svc); err != nil {
		return err
	}
	peers := map[string]*grpc.ClientConn{}
	for _, need := range svc.Needs {
		if peers[need], err = p.dial(need, cfg.ServiceAddrs[need]); err != nil {
			return err
		}
	}
	deps := Deps{
		Config: cfg, Logger: log, DB: pool, Redis: rdb,
		TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(),
		Peers: peers, Getenv: getenv,
	}
	if err := p.startService(ctx, svc, deps, ls[0]); err != nil {
		return err
	}
	return p.Wait(ctx, cfg.ShutdownTimeout)
}

// Migrate applies the migrations of the named services (all when none are named) to
// the database at cfg.DatabaseURL, then returns.
func Migrate(ctx context.Context, cfg config.Config, log *slog.Logger, tel Telemetry, services []Service, only ...string) error {
	if err := cfg.Require(true, false); err != nil {
		return err
	}
	byName := servicesByName(services)
	for _, o := range only {
		if _, ok := byName[o]; !ok {
			return fmt.Errorf("unknown service %q: want one of %v", o, names(services))
		}
	}
	p, err := NewProcess(log, tel)
	if err != nil {
		return err
	}
	defer p.Shutdown(cfg.ShutdownTimeout)
	for _, svc := range services {
		if len(only) > 0 && !slices.Contains(only, svc.Name) {
			continue
		}
		pool, err := p.openDatabase(ctx, cfg.DatabaseURL, svc.Name)
		if err != nil {
			return err
		}
		if err := p.migrate(ctx, pool, svc); err != nil {
			return err
		}
	}
	return nil
}

func names(services []Service) []string {
	out := make([]string, 0, len(services))
	for _, s := range services {
		out = append(out, s.Name)
	}
	return out
}
