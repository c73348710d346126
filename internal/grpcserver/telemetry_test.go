package grpcserver_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/telemetry"
	"github.com/backplane/backplane/internal/validation"
)

// The server traces and measures the methods it serves, and neither health checks
// (load balancers and /readyz call them every few seconds) nor methods it does not
// serve, whose names the client makes up.
func TestOnlyServedMethodsAreTracedAndMeasured(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(t.Context(), telemetry.Config{
		Pieces:         []string{"auth"},
		Sampler:        sdktrace.AlwaysSample(),
		SpanProcessors: []sdktrace.SpanProcessor{spans},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	v, err := validation.New()
	require.NoError(t, err)
	srv, err := grpcserver.New(grpcserver.Config{
		Logger:         logging.New(io.Discard, logging.Options{}),
		TracerProvider: tel.TracerProvider(),
		MeterProvider:  tel.MeterProvider(),
		Propagator:     tel.Propagator(),
		Validator:      v,
	})
	require.NoError(t, err)
	svc := &auth{sawID: make(chan string, 1)}
	authv1.RegisterAuthServiceServer(srv.Registrar(), svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	_, err = authv1.NewAuthServiceClient(conn).GetCurrentUser(t.Context(), &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	_, err = healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	for _, made := range []string{"/backplane.auth.v1.AuthService/Nope", "/made.up.Service/Anything"} {
		err = conn.Invoke(t.Context(), made, &emptypb.Empty{}, &emptypb.Empty{})
		require.Equal(t, codes.Unimplemented, status.Code(err), made)
	}
	srv.Shutdown(t.Context())

	var names []string
	for _, s := range spans.Ended() {
		names = append(names, s.Name())
	}
	require.Equal(t, []string{"backplane.auth.v1.AuthService/GetCurrentUser"}, names)

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	scrape := rec.Body.String()
	require.Contains(t, scrape, `rpc_method="backplane.auth.v1.AuthService/GetCurrentUser"`)
	for _, absent := range []string{"grpc.health", "Nope", "made.up"} {
		require.NotContains(t, scrape, absent)
	}
}
