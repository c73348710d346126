package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/service"
)

// Gateway is the piece name of the edge in `backplane serve`.
const Gateway = "gateway"

// authority returns the name of the service that issues credentials, which every other
// server asks to check them.
func authority(defs []service.Definition) (string, error) {
	for _, d := range defs {
		if d.Authority {
			return d.Name, nil
		}
	}
	return "", errors.New("no service is marked as the credential authority")
}

// owners returns the services that own at least one public API, in order.
func owners(defs []service.Definition) []string {
	var out []string
	for _, a := range service.APIs(defs) {
		if !slices.Contains(out, a.Owner) {
			out = append(out, a.Owner)
		}
	}
	return out
}

// peersOf returns the services a served service dials: those it needs, and the
// authority, which every service but the authority asks to check credentials.
func peersOf(svc service.Definition, authorityName string) []string {
	peers := slices.Clone(svc.Needs)
	if svc.Name != authorityName && !slices.Contains(peers, authorityName) {
		peers = append(peers, authorityName)
	}
	return peers
}

// Dials returns, for every piece `backplane serve` runs (the gateway and each of defs),
// the services it dials. Deployment manifests draw their network policies from it.
func Dials(defs []service.Definition) (map[string][]string, error) {
	auth, err := authority(defs)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{Gateway: owners(defs)}
	for _, d := range defs {
		out[d.Name] = peersOf(d, auth)
	}
	return out, nil
}

// CheckServe reports, in one error, every setting that `backplane serve piece` needs
// and cfg lacks. Serve mode never falls back to embedded stand-ins, so this runs with
// the rest of the configuration, before anything is opened.
func CheckServe(cfg config.Config, defs []service.Definition, piece string) error {
	auth, err := authority(defs)
	if err != nil {
		return err
	}
	if piece == Gateway {
		// Redis holds the live sessions every access token is checked against, and
		// the rate limits.
		return cfg.Require(false, true, owners(defs)...)
	}
	i := slices.IndexFunc(defs, func(d service.Definition) bool { return d.Name == piece })
	if i < 0 {
		return fmt.Errorf("unknown piece %q: want %s or one of %v", piece, Gateway, service.Names(defs))
	}
	return cfg.Require(true, true, peersOf(defs[i], auth)...)
}

// ServeGateway runs the edge for production, forwarding every public API of defs to its
// owner at BACKPLANE_<OWNER>_ADDR.
func ServeGateway(ctx context.Context, cfg config.Config, log *slog.Logger, tel Telemetry, defs []service.Definition) error {
	if err := CheckServe(cfg, defs, Gateway); err != nil {
		return err
	}
	auth, _ := authority(defs) // CheckServe found it
	p, err := NewProcess(log, tel)
	if err != nil {
		return err
	}
	defer p.Shutdown(ctx, cfg.ShutdownTimeout)
	ls, err := listen(ctx, cfg.HTTPAddr, cfg.GRPCAddr, cfg.AdminAddr)
	if err != nil {
		return err
	}
	p.SetProfiling(cfg.Pprof)
	p.ServeHTTP("admin", "", p.AdminHandler(), ls[2], nil)
	rdb, err := p.openRedis(ctx, cfg.RedisURL, Gateway)
	if err != nil {
		return err
	}
	creds, err := p.newCredentials(cfg, Gateway)
	if err != nil {
		return err
	}
	backends := map[string]grpc.ClientConnInterface{}
	for _, o := range owners(defs) {
		if backends[o], err = p.dial(Gateway, o, cfg.ServiceAddrs[o], creds); err != nil {
			return err
		}
	}
	chk, err := p.newChecker(ctx, creds, backends[auth], rdb, cfg.Issuer)
	if err != nil {
		return err
	}
	if err := p.startGateway(ctx, cfg, service.APIs(defs), backends, rdb, chk, ls[0], ls[1], false); err != nil {
		return err
	}
	return p.Wait(ctx, cfg.ShutdownTimeout)
}

// ServeService runs one service for production. defs are every service of the mesh,
// among which it finds the authority that checks credentials.
func ServeService(ctx context.Context, cfg config.Config, log *slog.Logger, tel Telemetry, svc service.Loaded, defs []service.Definition) error {
	if err := CheckServe(cfg, defs, svc.Name); err != nil {
		return err
	}
	auth, _ := authority(defs) // CheckServe found it
	p, err := NewProcess(log, tel)
	if err != nil {
		return err
	}
	defer p.Shutdown(ctx, cfg.ShutdownTimeout)
	ls, err := listen(ctx, cfg.GRPCAddr, cfg.AdminAddr)
	if err != nil {
		return err
	}
	p.SetProfiling(cfg.Pprof)
	p.ServeHTTP("admin", "", p.AdminHandler(), ls[1], nil)
	pool, err := p.openDatabase(ctx, cfg.DatabaseURL, svc.Name)
	if err != nil {
		return err
	}
	rdb, err := p.openRedis(ctx, cfg.RedisURL, svc.Name)
	if err != nil {
		return err
	}
	if cfg.MigrateOnStart {
		if err := p.migrate(ctx, pool, svc.Definition); err != nil {
			return err
		}
	} else if err := checkMigrated(ctx, pool, svc.Definition); err != nil {
		return err
	}
	creds, err := p.newCredentials(cfg, svc.Name)
	if err != nil {
		return err
	}
	conns := map[string]*grpc.ClientConn{}
	for _, peer := range peersOf(svc.Definition, auth) {
		if conns[peer], err = p.dial(svc.Name, peer, cfg.ServiceAddrs[peer], creds); err != nil {
			return err
		}
	}
	peers := map[string]*grpc.ClientConn{}
	for _, need := range svc.Needs {
		peers[need] = conns[need]
	}
	// The authority has no connection to itself: a nil interface, not a nil pointer.
	var authConn grpc.ClientConnInterface
	if c := conns[auth]; c != nil {
		authConn = c
	}
	chk, err := p.newChecker(ctx, creds, authConn, rdb, cfg.Issuer)
	if err != nil {
		return err
	}
	if err := p.startService(ctx, svc, p.deps(cfg, svc.Name, pool, rdb, peers), chk, ls[0], nil); err != nil {
		return err
	}
	return p.Wait(ctx, cfg.ShutdownTimeout)
}

// checkMigrated refuses to serve a service whose migrations someone else was to apply
// (BACKPLANE_MIGRATE_ON_START=false) and did not. Its job schema is checked when its
// job client starts.
func checkMigrated(ctx context.Context, pool *pgxpool.Pool, svc service.Definition) error {
	lacking, err := database.Unapplied(ctx, pool, svc.Name, svc.Migrations)
	if err != nil {
		return err
	}
	if len(lacking) > 0 {
		return fmt.Errorf("%s: the database lacks migrations %s: run `backplane migrate` first, or set BACKPLANE_MIGRATE_ON_START=true", svc.Name, strings.Join(lacking, ", "))
	}
	return nil
}

// Migrate applies the migrations of defs to the database at cfg.DatabaseURL, then
// returns.
func Migrate(ctx context.Context, cfg config.Config, log *slog.Logger, tel Telemetry, defs []service.Definition) error {
	if cfg.DatabaseURL == "" {
		return errors.New("BACKPLANE_DATABASE_URL is required to migrate (postgres://user:pass@host:5432/db)")
	}
	p, err := NewProcess(log, tel)
	if err != nil {
		return err
	}
	defer p.Shutdown(ctx, cfg.ShutdownTimeout)
	for _, svc := range defs {
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
