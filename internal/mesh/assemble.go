package mesh

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/backplane/backplane/gateway"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/clientip"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/grpcclient"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/ratelimit"
	"github.com/backplane/backplane/internal/redisclient"
	"github.com/backplane/backplane/internal/service"
)

// openRedis connects piece to Redis, registering its closing and a readiness report.
// Its commands are traced and measured as piece's. Redis down degrades a piece without
// making it unready: every replica shares the one Redis, so an unready answer would
// take every pod out of its Service at once and turn an outage of sign-in and
// signed-in calls into an outage of everything, public calls and webhooks included,
// which keep working without Redis (see the README's faults suite).
func (p *Process) openRedis(ctx context.Context, redisURL, piece string) (redis.UniversalClient, error) {
	pv := p.providers(piece)
	rdb, err := redisclient.Open(ctx, redisURL,
		redisclient.WithTracerProvider(pv.TracerProvider()),
		redisclient.WithMeterProvider(pv.MeterProvider()),
	)
	if err != nil {
		return nil, fmt.Errorf("open redis: %w", err)
	}
	p.OnStop("redis", func(context.Context) error { return rdb.Close() })
	p.AddReport("redis", func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	return rdb, nil
}

// openDatabase connects a pool for one service, whose search_path is the service's own
// schema, registering its closing and readiness check. Its queries and pool statistics
// are the service's, labelled with its name.
func (p *Process) openDatabase(ctx context.Context, databaseURL, schema string) (*pgxpool.Pool, error) {
	pv := p.providers(schema)
	pool, err := database.Open(ctx, databaseURL,
		database.WithSchema(schema),
		database.WithTracerProvider(pv.TracerProvider()),
		database.WithMeterProvider(pv.MeterProvider()),
	)
	if err != nil {
		return nil, fmt.Errorf("open database for %s: %w", schema, err)
	}
	p.OnStop("postgres "+schema, func(context.Context) error { pool.Close(); return nil })
	p.AddCheck("postgres "+schema, pool.Ping)
	return pool, nil
}

// deps is what the service named svc receives from this process.
func (p *Process) deps(cfg config.Config, svc string, pool *pgxpool.Pool, rdb redis.UniversalClient, peers map[string]*grpc.ClientConn) service.Deps {
	pv := p.providers(svc)
	return service.Deps{
		Logger:         p.log,
		DB:             pool,
		Redis:          rdb,
		TracerProvider: pv.TracerProvider(),
		MeterProvider:  pv.MeterProvider(),
		Peers:          peers,
		PublicURL:      cfg.PublicURL,
		Issuer:         cfg.Issuer,
		DataDir:        cfg.DataDir,
	}
}

// dial connects the piece caller to the service name, every call carrying this
// process's service credential, and makes the service's health a readiness check of
// this process. The calls are traced and measured as caller's.
func (p *Process) dial(caller, name, target string, creds *credentials) (*grpc.ClientConn, error) {
	pv := p.providers(caller)
	conn, err := grpcclient.Dial(target, grpcclient.Config{
		TracerProvider: pv.TracerProvider(),
		MeterProvider:  pv.MeterProvider(),
		Propagator:     pv.Propagator(),
		Credentials:    creds.transport(name),
		Options:        creds.dialOptions(),
	})
	if err != nil {
		return nil, err
	}
	p.OnStop("client "+name, func(context.Context) error { return conn.Close() })
	health := healthpb.NewHealthClient(conn)
	p.AddCheck("service "+name, func(ctx context.Context) error {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%s is %s", name, resp.GetStatus())
		}
		return nil
	})
	return conn, nil
}

// migrate brings a service's schema up to date, then its job schema and its data
// (Definition.Upgrade). Safe with many replicas at once: every step serialises them on
// one advisory lock.
func (p *Process) migrate(ctx context.Context, pool *pgxpool.Pool, svc service.Definition) error {
	applied, err := database.Migrate(ctx, pool, svc.Name, svc.Migrations)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", svc.Name, err)
	}
	if applied > 0 {
		p.log.InfoContext(ctx, "migrations applied", "service", svc.Name, "count", applied)
	}
	if svc.Jobs {
		applied, err = jobs.Migrate(ctx, pool, svc.Name, p.log)
		if err != nil {
			return fmt.Errorf("migrate %s jobs: %w", svc.Name, err)
		}
		if applied > 0 {
			p.log.InfoContext(ctx, "job queue migrations applied", "service", svc.Name, "schema", jobs.Schema(svc.Name), "count", applied)
		}
	}
	if svc.Upgrade == nil {
		return nil
	}
	// The lock is held on a connection of its own, so the upgrade still finds one in
	// pool.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("upgrade %s: %w", svc.Name, err)
	}
	defer conn.Release()
	err = database.WithMigrationLock(ctx, conn.Conn(), func(ctx context.Context) error {
		return svc.Upgrade(ctx, pool, p.log.With("service", svc.Name))
	})
	if err != nil {
		return fmt.Errorf("upgrade %s: %w", svc.Name, err)
	}
	return nil
}

// startService builds svc, registers it on its own gRPC server, which enforces every
// RPC's access policy, and serves it on lis, and to local's callers in process when
// local is not nil.
func (p *Process) startService(ctx context.Context, svc service.Loaded, deps service.Deps, chk *checker, lis net.Listener, local *localConn) error {
	inst, err := svc.Start(ctx, deps)
	if err != nil {
		return fmt.Errorf("start %s: %w", svc.Name, err)
	}
	if inst.Stop != nil {
		p.OnStop(svc.Name+" workers", inst.Stop)
	}
	if inst.Ready != nil {
		p.AddCheck(svc.Name+" dependencies", inst.Ready)
	}
	if inst.Jobs != nil {
		if err := p.AddJobs(inst.Jobs); err != nil {
			return fmt.Errorf("start %s: %w", svc.Name, err)
		}
	}
	sc := p.ServerConfig(svc.Name)
	if sc.Authenticate, err = chk.interceptors(p, inst, serviceExempt, false); err != nil {
		return fmt.Errorf("start %s: %w", svc.Name, err)
	}
	sc.Options = append(sc.Options, chk.creds.serverOptions(svc.Name)...)
	srv, err := grpcserver.New(sc)
	if err != nil {
		return err
	}
	inst.Register(srv.Registrar())
	p.ServeGRPC(svc.Name, srv, lis)
	if local != nil {
		p.serveLocally(local, srv, inst)
	}
	return nil
}

// startGateway serves both front doors, forwarding each public API to its owner's
// connection in backends; dev adds the pages that complete emailed links' flows.
func (p *Process) startGateway(ctx context.Context, cfg config.Config, apis []service.API, backends map[string]grpc.ClientConnInterface, rdb redis.UniversalClient, chk *checker, httpLis, grpcLis net.Listener, dev bool) error {
	resolver, err := clientip.NewResolver(cfg.Edge.TrustedProxies, clientip.WithHeader(cfg.Edge.ClientIPHeader))
	if err != nil {
		return fmt.Errorf("BACKPLANE_TRUSTED_PROXIES, BACKPLANE_CLIENT_IP_HEADER: %w", err)
	}
	tlsConfig, err := loadTLS(cfg.Edge)
	if err != nil {
		return err
	}
	server := p.ServerConfig(Gateway)
	if server.Authenticate, err = chk.interceptors(p, &service.Instance{}, edgeExempt, true); err != nil {
		return fmt.Errorf("start gateway: %w", err)
	}
	if tlsConfig != nil {
		server.Options = append(server.Options, grpc.Creds(grpccreds.NewTLS(tlsConfig)))
	}
	limiter, err := ratelimit.New(ratelimit.Config{
		Redis:         rdb,
		FailureMode:   cfg.Edge.RateLimitFailureMode,
		MeterProvider: p.providers(Gateway).MeterProvider(),
		Logger:        p.log,
		// A replica reserves a few units per Redis round trip instead of asking on every
		// call: it never over-admits, and it takes the round trip off most requests.
		Lease: true,
	})
	if err != nil {
		return err
	}
	if cfg.Edge.RateLimitFailureMode == ratelimit.FailClosed {
		p.AddCheck("rate limiter", limiter.Healthy)
	} else {
		// Failing open, the edge still serves without Redis: say so on /readyz without
		// pulling every replica out of the load balancer at once.
		p.AddReport("rate limiter", limiter.Healthy)
	}
	policy, err := p.rateLimitPolicy(ctx, cfg, backends, rdb)
	if err != nil {
		return err
	}
	gw, err := gateway.New(ctx, gateway.Config{
		Logger:   p.log,
		Server:   server,
		Backends: backends,
		APIs:     apis,
		ClientIP: resolver,
		CORS: gateway.CORSConfig{
			AllowedOrigins:   cfg.Edge.CORSAllowedOrigins,
			AllowCredentials: cfg.Edge.CORSAllowCredentials,
			MaxAge:           cfg.Edge.CORSMaxAge,
		},
		MaxBodyBytes:   cfg.Edge.MaxBodyBytes,
		MaxCallTimeout: cfg.Edge.MaxCallTimeout,
		PublicURL:      cfg.PublicURL,
		DevPages:       dev,
		TLS:            tlsConfig != nil,
		RateLimit: &gateway.RateLimitConfig{
			Limiter: limiter,
			Policy:  policy,
		},
		APICalls: apiCalls(backends),
	})
	if err != nil {
		return err
	}
	// Stopped after the front doors (most recent first): the last counts go out once no
	// call can add to them.
	p.OnStop("gateway api calls", gw.Stop)
	p.ServeGRPC("gateway-grpc", gw.GRPC(), grpcLis)
	p.ServeHTTP("gateway-http", Gateway, gw.REST(), httpLis, tlsConfig)
	return nil
}

// apiCalls counts users' calls on the usage service's api_calls meter, when the edge
// routes to a usage service.
func apiCalls(backends map[string]grpc.ClientConnInterface) *gateway.APICallsConfig {
	conn := backends["usage"]
	if conn == nil {
		return nil
	}
	return &gateway.APICallsConfig{Usage: usagev1.NewUsageServiceClient(conn)}
}

// loadTLS loads the front doors' certificate, if one is configured.
func loadTLS(edge config.Edge) (*tls.Config, error) {
	if edge.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(edge.TLSCertFile, edge.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("BACKPLANE_TLS_CERT_FILE / BACKPLANE_TLS_KEY_FILE: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}

// listen opens the listeners a process needs up front, so a port already taken fails
// the start at once, before any migration runs.
func listen(ctx context.Context, addrs ...string) ([]net.Listener, error) {
	var lc net.ListenConfig
	var out []net.Listener
	for _, a := range addrs {
		lis, err := lc.Listen(ctx, "tcp", a)
		if err != nil {
			for _, l := range out {
				_ = l.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		out = append(out, lis)
	}
	return out, nil
}
