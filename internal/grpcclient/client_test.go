package grpcclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/grpcclient"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/requestid"
)

type seen struct {
	requestID   string
	hasDeadline bool
	deadline    time.Duration
}

type auth struct {
	authv1.UnimplementedAuthServiceServer
	calls chan seen
}

func (a *auth) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s := seen{}
	if v := md.Get("x-request-id"); len(v) > 0 {
		s.requestID = v[0]
	}
	if d, ok := ctx.Deadline(); ok {
		s.hasDeadline, s.deadline = true, time.Until(d)
	}
	a.calls <- s
	return &authv1.GetCurrentUserResponse{}, nil
}

func setup(t *testing.T, timeout time.Duration) (authv1.AuthServiceClient, chan seen) {
	t.Helper()
	a := &auth{calls: make(chan seen, 1)}
	srv := grpctest.Start(t, func(s grpc.ServiceRegistrar) { authv1.RegisterAuthServiceServer(s, a) })
	// The client under test is dialled here with its own settings, not the harness's.
	conn, err := grpcclient.Dial(srv.Addr, grpcclient.Config{
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  noop.NewMeterProvider(),
		Propagator:     propagation.TraceContext{},
		DefaultTimeout: timeout,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return authv1.NewAuthServiceClient(conn), a.calls
}

func TestRequestIDTravelsToTheNextService(t *testing.T) {
	t.Parallel()
	client, calls := setup(t, 0)
	ctx := requestid.NewContext(context.Background(), "req-42")
	_, err := client.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	require.Equal(t, "req-42", (<-calls).requestID)
}

func TestCallsWithoutDeadlineGetTheDefault(t *testing.T) {
	t.Parallel()
	client, calls := setup(t, 3*time.Second)
	_, err := client.GetCurrentUser(context.Background(), &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	s := <-calls
	require.True(t, s.hasDeadline)
	require.LessOrEqual(t, s.deadline, 3*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = client.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	require.Greater(t, (<-calls).deadline, 3*time.Second, "the caller's own deadline wins")
}

func TestDialRejectsMissingDependencies(t *testing.T) {
	t.Parallel()
	_, err := grpcclient.Dial("127.0.0.1:1", grpcclient.Config{})
	require.Error(t, err)
	_, err = grpcclient.Dial("", grpcclient.Config{})
	require.Error(t, err)
}
