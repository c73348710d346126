package bench_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/backplane/backplane/gateway"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/services"
)

// echo is the service behind both the gateway and the baseline: as cheap as a handler
// can be, so that what is measured is the edge. With a pool it reads the user from
// PostgreSQL first, as the real handler does, to show the edge's share of a real call.
type echo struct {
	authv1.UnimplementedAuthServiceServer
	pool *pgxpool.Pool
}

func (e echo) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	name := "Ada"
	if e.pool != nil {
		if err := e.pool.QueryRow(ctx, "SELECT $1::text", name).Scan(&name); err != nil {
			return nil, err
		}
	}
	return &authv1.GetCurrentUserResponse{User: &authv1.User{Id: "0b7c3f1e-9d7e-4f7a-8a8e-2f1d6f1a9c11", Email: "ada@example.com", DisplayName: name}}, nil
}

type edge struct {
	security   *security
	backend    *grpc.ClientConn
	backendURL string
	bareREST   string
	gwREST     string
	gwGRPC     *grpc.ClientConn
}

// startEdge serves svc behind a gateway. A guarded service runs the chain every
// Backplane service runs in production (access log, recovery, credential checks,
// validation); otherwise it is a bare gRPC server.
func startEdge(b *testing.B, svc echo, guarded bool) *edge {
	b.Helper()
	sec := newSecurity(b)
	e := &edge{security: sec}
	if guarded {
		srv := grpctest.Start(b, func(s grpc.ServiceRegistrar) { authv1.RegisterAuthServiceServer(s, svc) },
			grpctest.WithServerConfig(func(c *grpcserver.Config) { c.Authenticate = sec.interceptors }))
		e.backendURL = srv.Addr
	} else {
		// The baseline is a bare gRPC server on purpose, not the harness's production chain.
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := grpc.NewServer()
		authv1.RegisterAuthServiceServer(srv, svc)
		go func() { _ = srv.Serve(lis) }()
		b.Cleanup(srv.Stop)
		e.backendURL = lis.Addr().String()
	}
	// Every client, the baseline's included, is the one the services use (grpcclient),
	// so the comparison is of servers and hops, not of clients.
	e.backend = grpctest.Dial(b, e.backendURL)

	// Baseline: grpc-gateway's mux straight onto the service, nothing else.
	bare := runtime.NewServeMux()
	if err := authv1.RegisterAuthServiceHandler(context.Background(), bare, e.backend); err != nil {
		b.Fatal(err)
	}
	bareSrv := httptest.NewServer(bare)
	b.Cleanup(bareSrv.Close)
	e.bareREST = bareSrv.URL

	backends := map[string]grpc.ClientConnInterface{}
	for _, o := range services.Names() {
		backends[o] = e.backend
	}
	serverCfg := grpctest.ServerConfig(b)
	serverCfg.Authenticate = e.security.interceptors
	gw, err := gateway.New(context.Background(), gateway.Config{
		Logger:    logging.New(io.Discard, logging.Options{}),
		Server:    serverCfg,
		Backends:  backends,
		APIs:      services.APIs(),
		RateLimit: e.security.rateLimit,
	})
	if err != nil {
		b.Fatal(err)
	}
	gwSrv := httptest.NewServer(gw.REST())
	b.Cleanup(gwSrv.Close)
	e.gwREST = gwSrv.URL
	e.gwGRPC = grpctest.Serve(b, gw.GRPC()).Conn
	return e
}

func httpGet(ctx context.Context, client *http.Client, url, token string) func() error {
	return func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// BenchmarkRESTEdge: REST GET /v1/users/me through the gateway's whole chain (request
// id, access log, recovery, JWT verification with the session checked in Redis,
// validation, a rate-limit decision in Redis), against a bare grpc-gateway mux in front
// of the same gRPC service. Aim: throughput-ratio ≥ 0.5, p50-ratio ≤ 2.
func BenchmarkRESTEdge(b *testing.B) {
	e := startEdge(b, echo{}, false)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	compare(b, 4000, 8,
		httpGet(b.Context(), client, e.bareREST+"/v1/users/me", ""),
		httpGet(b.Context(), client, e.gwREST+"/v1/users/me", e.security.token))
}

// BenchmarkGRPCEdge: GetCurrentUser through the gateway's gRPC front door, against the
// same call made to the service directly. Aim: p50-ratio ≤ 1.3.
//   - echo: a bare gRPC echo behind the edge, so the edge's hop and chain are the whole
//     difference;
//   - guarded: the echo runs the chain every Backplane service runs (it checks the
//     caller too), which is what calling a service directly costs in production;
//   - guarded-with-query: that, plus one PostgreSQL round trip, as GET /v1/users/me has.
func BenchmarkGRPCEdge(b *testing.B) {
	b.Run("echo", func(b *testing.B) { benchGRPCEdge(b, echo{}, false) })
	b.Run("guarded", func(b *testing.B) { benchGRPCEdge(b, echo{}, true) })
	b.Run("guarded-with-query", func(b *testing.B) {
		pool, err := database.Open(context.Background(), dbtest.NewDatabase(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		benchGRPCEdge(b, echo{pool: pool}, true)
	})
}

func benchGRPCEdge(b *testing.B, svc echo, guarded bool) {
	e := startEdge(b, svc, guarded)
	direct := authv1.NewAuthServiceClient(e.backend)
	viaEdge := authv1.NewAuthServiceClient(e.gwGRPC)
	call := func(c authv1.AuthServiceClient, ctx context.Context) func() error {
		return func() error {
			_, err := c.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
			return err
		}
	}
	withToken := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+e.security.token)
	compare(b, 4000, 8, call(direct, withToken), call(viaEdge, withToken))
}
