package telemetry_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"

	"github.com/backplane/backplane/internal/telemetry"
)

// serveHealth serves the gRPC health service instrumented with piece's providers
// and returns a client of it.
func serveHealth(t *testing.T, piece *telemetry.Piece, opts ...otelgrpc.Option) healthpb.HealthClient {
	t.Helper()
	opts = append(opts, otelgrpc.WithTracerProvider(piece.TracerProvider()),
		otelgrpc.WithMeterProvider(piece.MeterProvider()), otelgrpc.WithPropagators(piece.Propagator()))
	srv := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler(opts...)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func TestPiecesKeepTheirOwnPrometheusSeries(t *testing.T) {
	t.Parallel()
	cfg, _ := recording("gateway", "auth")
	tel := start(t, cfg)
	for name, calls := range map[string]int{"gateway": 2, "auth": 3} {
		piece, err := tel.Piece(name)
		require.NoError(t, err)
		client := serveHealth(t, piece)
		for range calls {
			_, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
		}
	}

	// The registry accepts both pieces' families, so the scrape is whole.
	_, err := tel.Registry().Gather()
	require.NoError(t, err)
	// A server records a call's duration after it has sent the answer, so the client may
	// scrape before the last call is counted: the counts are waited for.
	counts := map[string]*regexp.Regexp{}
	for name, calls := range map[string]string{"backplane-gateway": "2", "backplane-auth": "3"} {
		counts[name] = regexp.MustCompile(`(?m)^rpc_server_call_duration_seconds_count\{[^}]*service_name="` + name + `"[^}]*\} ` + calls + `$`)
	}
	var body string
	require.Eventually(t, func() bool {
		body = scrape(t, tel.MetricsHandler())
		for _, re := range counts {
			if !re.MatchString(body) {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond, "each piece's calls counted as its own")
	for _, re := range counts {
		require.Regexp(t, re, body)
	}
	require.NotContains(t, body, "otel_scope_")
	require.Regexp(t, `target_info\{[^}]*service_name="backplane-gateway"`, body)
	require.Regexp(t, `target_info\{[^}]*service_name="backplane-auth"`, body)
}

func TestGRPCFilterLeavesOutHealthReflectionAndUnknownMethods(t *testing.T) {
	t.Parallel()
	cfg, rec := recording("auth")
	tel := start(t, cfg)
	piece, err := tel.Piece("auth")
	require.NoError(t, err)
	client := serveHealth(t, piece, otelgrpc.WithFilter(telemetry.GRPCFilter(nil)))
	_, err = client.Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)

	require.Empty(t, rec.Ended())
	require.NotContains(t, scrape(t, tel.MetricsHandler()), "rpc_server_call_duration")

	known := func(m string) bool { return m == "/backplane.auth.v1.AuthService/Login" }
	filter := telemetry.GRPCFilter(known)
	for method, want := range map[string]bool{
		"/backplane.auth.v1.AuthService/Login":                      true,
		"/backplane.auth.v1.AuthService/MadeUp":                     false,
		"/grpc.health.v1.Health/Watch":                              false,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": false,
	} {
		require.Equal(t, want, filter(&stats.RPCTagInfo{FullMethodName: method}), method)
	}
	require.True(t, telemetry.GRPCFilter(nil)(&stats.RPCTagInfo{FullMethodName: "/any.Service/Method"}))
}

func TestHTTPMetricsNeverLabelClientValues(t *testing.T) {
	t.Parallel()
	cfg, rec := recording("gateway")
	tel := start(t, cfg)
	piece, err := tel.Piece("gateway")
	require.NoError(t, err)
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What grpc-gateway's router knows once it has matched.
		telemetry.SetHTTPRoute(r.Context(), r.Method, "/v1/users/{user_id}")
		_, _ = w.Write([]byte(`{"id":"u1"}`))
	})
	h := otelhttp.NewHandler(route, "rest",
		otelhttp.WithTracerProvider(piece.TracerProvider()),
		otelhttp.WithMeterProvider(piece.MeterProvider()),
		otelhttp.WithPropagators(piece.Propagator()),
	)
	for i := range 5 {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/users/u"+string(rune('1'+i)), nil)
		req.Host = "attacker" + string(rune('a'+i)) + ".example:" + string(rune('1'+i)) + "000"
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		require.Equal(t, http.StatusOK, rr.Code)
	}

	body := scrape(t, tel.MetricsHandler())
	require.NotContains(t, body, "attacker")
	require.NotContains(t, body, "server_address")
	require.NotContains(t, body, "server_port")
	require.NotContains(t, body, "body_size", "unread histograms are dropped")
	require.Regexp(t, `(?m)^http_server_request_duration_seconds_count\{[^}]*http_route="/v1/users/\{user_id\}"[^}]*\} 5$`, body)

	spans := rec.Ended()
	require.Len(t, spans, 5)
	require.Equal(t, "GET /v1/users/{user_id}", spans[0].Name())
	attrs := attribute.NewSet(spans[0].Attributes()...)
	got, ok := attrs.Value("http.route")
	require.True(t, ok)
	require.Equal(t, "/v1/users/{user_id}", got.AsString())
}

func TestSetHTTPRouteNamesOddMethodsHTTP(t *testing.T) {
	t.Parallel()
	cfg, rec := recording("gateway")
	tel := start(t, cfg)
	ctx, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "rest", trace.WithSpanKind(trace.SpanKindServer))
	telemetry.SetHTTPRoute(ctx, "BREW", "/v1/pots/{pot}")
	telemetry.SetHTTPRoute(ctx, "GET", "") // no route: nothing changes
	span.End()
	require.Equal(t, "HTTP /v1/pots/{pot}", rec.Ended()[0].Name())
	// Outside any span or labeler it does nothing, and does not fail.
	telemetry.SetHTTPRoute(context.Background(), "GET", "/v1/x")
}

func TestAdminRequestsAreNotTracedNorMeasured(t *testing.T) {
	t.Parallel()
	cfg, rec := recording("gateway")
	tel := start(t, cfg)
	piece, err := tel.Piece("gateway")
	require.NoError(t, err)
	tracer := piece.TracerProvider().Tracer("test")

	var checkRecorded []bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		// A readiness check calls out, as /readyz does to Redis and PostgreSQL.
		_, s := tracer.Start(r.Context(), "PING", trace.WithSpanKind(trace.SpanKindClient))
		checkRecorded = append(checkRecorded, s.IsRecording())
		s.End()
	})
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
	mux.Handle("GET /metrics", tel.MetricsHandler())
	mux.HandleFunc("GET /v1/plans", func(http.ResponseWriter, *http.Request) {})
	h := otelhttp.NewHandler(telemetry.Untraced(mux), "admin",
		otelhttp.WithTracerProvider(piece.TracerProvider()),
		otelhttp.WithMeterProvider(piece.MeterProvider()),
		otelhttp.WithFilter(telemetry.HTTPFilter),
	)
	for _, path := range []string{"/readyz", "/healthz", "/metrics", "/readyz"} {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
		require.Equal(t, http.StatusOK, rr.Code, path)
	}
	require.Equal(t, []bool{false, false}, checkRecorded)
	require.Empty(t, rec.Ended())
	require.NotContains(t, scrape(t, tel.MetricsHandler()), "http_server_request_duration")

	// The filter is by path: a product route behind the same handler is traced.
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/plans", nil))
	require.Len(t, rec.Ended(), 1)
	require.True(t, rec.Ended()[0].SpanContext().IsSampled())
}
