package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/redisclient"
	"github.com/backplane/backplane/internal/service"
)

// devDatabaseName is the database `backplane dev` keeps its data in on a local server.
const devDatabaseName = "backplane"

// DevOptions are the flags of `backplane dev`.
type DevOptions struct {
	// Reset drops every service's schemas (and their job queues') from the dev database
	// and removes the dev mailbox before anything starts: a clean slate, migrated anew.
	Reset bool
	// Loopback has the edge call each service over loopback gRPC with mutual TLS, as
	// the serve topology does between processes, instead of in process: for debugging
	// what crosses the wire.
	Loopback bool
}

// Dev runs every service and the gateway in one process. Each service listens on its
// own loopback port and the services call each other over real gRPC, as in production.
// The edge calls them in process (unless opts.Loopback): through each service's own
// interceptor chain, which enforces every policy as for a network call, but with no
// socket, TLS or encoding between them. Missing PostgreSQL and Redis URLs fall back to
// local stand-ins, each logged.
func Dev(ctx context.Context, cfg config.Config, log *slog.Logger, tel Telemetry, services []service.Loaded, opts DevOptions) error {
	defs := service.Definitions(services)
	auth, err := authority(defs)
	if err != nil {
		return err
	}
	p, err := NewProcess(log, tel)
	if err != nil {
		return err
	}
	defer p.Shutdown(ctx, cfg.ShutdownTimeout) // stops whatever started if we return early

	fronts, err := listen(ctx, cfg.HTTPAddr, cfg.GRPCAddr, cfg.AdminAddr)
	if err != nil {
		return err
	}
	httpLis, grpcLis, adminLis := fronts[0], fronts[1], fronts[2]
	p.SetProfiling(cfg.Pprof)
	p.ServeHTTP("admin", "", p.AdminHandler(), adminLis, nil)

	dbURL, err := p.devDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	if opts.Reset {
		if err := p.resetDev(ctx, cfg, dbURL, defs); err != nil {
			return err
		}
	}
	redisURL, err := p.devRedis(cfg)
	if err != nil {
		return err
	}
	// The edge's client, which also checks every server's credentials against the
	// live sessions; each service gets one of its own below.
	rdb, err := p.openRedis(ctx, redisURL, Gateway)
	if err != nil {
		return err
	}

	creds, err := p.newDevCredentials(cfg, service.Names(defs))
	if err != nil {
		return err
	}
	listeners := map[string]net.Listener{}
	conns := map[string]grpc.ClientConnInterface{}
	locals := map[string]*localConn{}
	for _, svc := range services {
		ls, err := listen(ctx, "127.0.0.1:0")
		if err != nil {
			return err
		}
		listeners[svc.Name] = ls[0]
		if opts.Loopback {
			if conns[svc.Name], err = p.dial(Gateway, svc.Name, ls[0].Addr().String(), creds); err != nil {
				return err
			}
			continue
		}
		locals[svc.Name], conns[svc.Name] = p.local(Gateway, svc.Name, creds)
	}
	chk, err := p.newChecker(ctx, creds, conns[auth], rdb, cfg.Issuer)
	if err != nil {
		return err
	}
	for _, svc := range services {
		pool, err := p.openDatabase(ctx, dbURL, svc.Name)
		if err != nil {
			return err
		}
		if err := p.migrate(ctx, pool, svc.Definition); err != nil {
			return err
		}
		// A connection of the service's own to each service it needs, so that its
		// calls are traced and measured as its own, not as the edge's.
		peers := map[string]*grpc.ClientConn{}
		for _, need := range svc.Needs {
			if listeners[need] == nil {
				return fmt.Errorf("%s needs %s, which this process does not run", svc.Name, need)
			}
			if peers[need], err = p.dial(svc.Name, need, listeners[need].Addr().String(), creds); err != nil {
				return err
			}
		}
		svcRedis, err := p.openRedis(ctx, redisURL, svc.Name)
		if err != nil {
			return err
		}
		if err := p.startService(ctx, svc, p.deps(cfg, svc.Name, pool, svcRedis, peers), chk, listeners[svc.Name], locals[svc.Name]); err != nil {
			return err
		}
	}
	if err := p.startGateway(ctx, cfg, service.APIs(defs), conns, rdb, chk, httpLis, grpcLis, true); err != nil {
		return err
	}
	log.InfoContext(ctx, "backplane dev is up",
		"rest", "http://"+httpLis.Addr().String(), "grpc", grpcLis.Addr().String(),
		"admin", "http://"+adminLis.Addr().String())
	return p.Wait(ctx, cfg.ShutdownTimeout)
}

// devDatabase resolves PostgreSQL for dev: BACKPLANE_DATABASE_URL; else a server on
// 127.0.0.1:5432; else a private cluster under the data dir, stopped on exit.
func (p *Process) devDatabase(ctx context.Context, cfg config.Config) (string, error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, nil
	}
	const local = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	err := ensureDatabase(ctx, local+"&connect_timeout=2", devDatabaseName)
	if err == nil {
		p.log.InfoContext(ctx, "using the PostgreSQL server on 127.0.0.1:5432", "database", devDatabaseName)
		return withDatabase(local, devDatabaseName)
	}
	p.log.InfoContext(ctx, "no PostgreSQL server on 127.0.0.1:5432; starting a private cluster", "reason", err.Error())
	cluster, err := database.StartDevCluster(ctx, filepath.Join(cfg.DataDir, "postgres"))
	if err != nil {
		return "", fmt.Errorf("no PostgreSQL for dev mode: %w", err)
	}
	p.OnStop("dev postgres", cluster.Stop)
	if err := ensureDatabase(ctx, cluster.URL(), devDatabaseName); err != nil {
		return "", err
	}
	return withDatabase(cluster.URL(), devDatabaseName)
}

// withDatabase returns serverURL naming another database.
func withDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("dev cluster URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// ensureDatabase creates a database on the server at adminURL unless it exists.
func ensureDatabase(ctx context.Context, adminURL, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if err != nil && !errors.Is(database.TranslateError(err), database.ErrConflict) {
		return err
	}
	return nil
}

// resetDev drops what dev mode keeps: every service's schema and job-queue schema in
// the dev database, and the mailbox. It refuses a database on another machine, which
// is more likely someone's real data than a laptop's.
func (p *Process) resetDev(ctx context.Context, cfg config.Config, dbURL string, defs []service.Definition) error {
	if cfg.DatabaseURL != "" {
		u, err := url.Parse(cfg.DatabaseURL)
		if err != nil {
			return fmt.Errorf("backplane dev --reset: BACKPLANE_DATABASE_URL: %w", err)
		}
		if !loopbackHost(u.Hostname()) {
			return fmt.Errorf("backplane dev --reset drops data, so it runs only against a PostgreSQL on this machine; BACKPLANE_DATABASE_URL names %q", u.Hostname())
		}
	}
	var schemas []string
	for _, d := range defs {
		schemas = append(schemas, d.Name)
		if d.Jobs {
			schemas = append(schemas, jobs.Schema(d.Name))
		}
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("backplane dev --reset: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	for _, s := range schemas {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
			return fmt.Errorf("backplane dev --reset: drop schema %s: %w", s, err)
		}
	}
	mailbox := filepath.Join(cfg.DataDir, "mailbox")
	if err := os.RemoveAll(mailbox); err != nil {
		return fmt.Errorf("backplane dev --reset: %w", err)
	}
	p.log.WarnContext(ctx, "backplane dev --reset: every account and all data are gone",
		"database", conn.Config().Database, "host", conn.Config().Host, "dropped_schemas", schemas, "removed", mailbox)
	return nil
}

// loopbackHost reports whether a PostgreSQL host is this machine: a loopback name or
// address, or a Unix socket directory.
func loopbackHost(host string) bool {
	if host == "" || host == "localhost" || strings.HasPrefix(host, "/") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// devRedis resolves Redis for dev: BACKPLANE_REDIS_URL, else an in-process stand-in.
func (p *Process) devRedis(cfg config.Config) (string, error) {
	if cfg.RedisURL != "" {
		return cfg.RedisURL, nil
	}
	addr, stop, err := redisclient.StartEmbedded()
	if err != nil {
		return "", err
	}
	p.OnStop("embedded redis", func(context.Context) error { stop(); return nil })
	p.log.Warn("using an embedded in-process Redis: dev only, data is lost on exit; set BACKPLANE_REDIS_URL for a real one")
	return addr, nil
}
