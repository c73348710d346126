package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"google.golang.org/grpc"

	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/catalog"
	"github.com/backplane/backplane/internal/config"
)

// Serve runs one piece of the mesh for production: "gateway" or a service name. It
// never falls back to embedded stand-ins; a missing URL is a start-up error.
func Serve(ctx context.Context, cfg config.Config, getenv func(string) string, log *slog.Logger, tel Telemetry, services []Service, piece string) error {
	if piece == "gateway" {
		return serveGateway(ctx, cfg, getenv, log, tel)
	}
	svc, ok := servicesByName(services)[piece]
	if !ok {
		return fmt.Errorf("unknown piece %q: want gateway or one of %v", piece, names(services))
	}
	return serveService(ctx, cfg, getenv, log, tel, svc)
}

func serveGateway(ctx context.Context, cfg config.Config, getenv func(string) string, log *slog.Logger, tel Telemetry) error {
	owners := catalog.Owners()
	// Redis holds the live sessions every access token is checked against, and the
	// rate limits.
	if err := cfg.Require(false, true, owners...); err != nil {
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
	rdb, err := p.openRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	creds, err := p.newCredentials(cfg, "gateway")
	if err != nil {
		return err
	}
	backends := map[string]*grpc.ClientConn{}
	for _, o := range owners {
		if backends[o], err = p.dial(o, cfg.ServiceAddrs[o], creds); err != nil {
			return err
		}
	}
	chk, err := newChecker(creds, backends["auth"], rdb, authn.IssuerFrom(cfg.PublicURL, getenv))
	if err != nil {
		return err
	}
	if err := p.startGateway(ctx, cfg, backends, rdb, chk, ls[0], ls[1]); err != nil {
		return err
	}
	return p.Wait(ctx, cfg.ShutdownTimeout)
}

func serveService(ctx context.Context, cfg config.Config, getenv func(string) string, log *slog.Logger, tel Telemetry, svc Service) error {
	// Every service but auth asks auth for the keys that verify access tokens.
	needs := slices.Clone(svc.Needs)
	if svc.Name != "auth" && !slices.Contains(needs, "auth") {
		needs = append(needs, "auth")
	}
	if err := cfg.Require(true, true, needs...); err != nil {
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
	creds, err := p.newCredentials(cfg, svc.Name)
	if err != nil {
		return err
	}
	conns := map[string]*grpc.ClientConn{}
	for _, need := range needs {
		if conns[need], err = p.dial(need, cfg.ServiceAddrs[need], creds); err != nil {
			return err
		}
	}
	peers := map[string]*grpc.ClientConn{}
	for _, need := range svc.Needs {
		peers[need] = conns[need]
	}
	chk, err := newChecker(creds, conns["auth"], rdb, authn.IssuerFrom(cfg.PublicURL, getenv))
	if err != nil {
		return err
	}
	deps := Deps{
		Config: cfg, Logger: log, DB: pool, Redis: rdb,
		TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(),
		Peers: peers, Getenv: getenv,
	}
	if err := p.startService(ctx, svc, deps, chk, ls[0]); err != nil {
		return err
	}
	return p.Wait(ctx, cfg.ShutdownTimeout)
}

// Migrate applies the migrations of the named services (all when none are named) to
// the database at cfg.DatabaseURL, then returns.
func Migrate(ctx context.Context, cfg config.Config, log *slog.Logger, tel Telemetry, services []Service, only ...string) error {
	if cfg.DatabaseURL == "" {
		return errors.New("BACKPLANE_DATABASE_URL is required to migrate (postgres://user:pass@host:5432/db)")
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
