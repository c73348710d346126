package grpcserver_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/grpctest"
)

// store is a stand-in service whose handlers query PostgreSQL and report failures as
// services do: wrapped as INTERNAL, the cause hidden.
type store struct {
	authv1.UnimplementedAuthServiceServer
	notificationv1.UnimplementedNotificationServiceServer
	pool *pgxpool.Pool
}

func (s *store) query(ctx context.Context) error {
	var one int
	if err := s.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fault.Wrap(fault.Internal, err, "query failed")
	}
	return nil
}

func (s *store) Login(ctx context.Context, _ *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	if err := s.query(ctx); err != nil {
		return nil, err
	}
	return &authv1.LoginResponse{}, nil
}

func (s *store) StreamNotifications(_ *notificationv1.StreamNotificationsRequest, stream grpc.ServerStreamingServer[notificationv1.StreamNotificationsResponse]) error {
	return s.query(stream.Context())
}

func serveStore(t *testing.T, pool *pgxpool.Pool) (authv1.AuthServiceClient, notificationv1.NotificationServiceClient) {
	t.Helper()
	svc := &store{pool: pool}
	s := grpctest.Start(t, func(r grpc.ServiceRegistrar) {
		authv1.RegisterAuthServiceServer(r, svc)
		notificationv1.RegisterNotificationServiceServer(r, svc)
	})
	return authv1.NewAuthServiceClient(s.Conn), notificationv1.NewNotificationServiceClient(s.Conn)
}

// requireRetryableOutage checks the answer to a call made while PostgreSQL was gone.
func requireRetryableOutage(t *testing.T, err error) {
	t.Helper()
	st := status.Convert(err)
	require.Equal(t, codes.Unavailable, st.Code(), "an outage is UNAVAILABLE, which clients retry, not INTERNAL: %v", err)
	require.NotContains(t, st.Message(), "127.0.0.1", "nothing of the dependency leaks")
	var advice *errdetails.RetryInfo
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			advice = ri
		}
	}
	require.NotNil(t, advice, "the answer says when to retry")
	require.Positive(t, advice.GetRetryDelay().AsDuration())
}

func TestDatabaseRefusingConnectionsIsUnavailable(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/none?connect_timeout=2")
	require.NoError(t, err)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	auth, notification := serveStore(t, pool)

	_, err = auth.Login(context.Background(), &authv1.LoginRequest{Email: "ada@example.com", Password: "x"})
	requireRetryableOutage(t, err)

	stream, err := notification.StreamNotifications(context.Background(), &notificationv1.StreamNotificationsRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	requireRetryableOutage(t, err)
}

func TestDatabaseEndingConnectionsIsUnavailable(t *testing.T) {
	t.Parallel()
	url := dbtest.NewDatabase(t)
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	// One connection, used as it is: the pool does not ping it first, as with a query
	// already on its way when the server went.
	cfg.MaxConns = 1
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	auth, _ := serveStore(t, pool)
	_, err = auth.Login(context.Background(), &authv1.LoginRequest{Email: "ada@example.com", Password: "x"})
	require.NoError(t, err, "the pool holds a live connection")

	// What a stopping or restarting server does to its sessions (SQLSTATE 57P01).
	admin, err := pgx.Connect(context.Background(), dbtest.ServerURL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	_, err = admin.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", cfg.ConnConfig.Database)
	require.NoError(t, err)

	_, err = auth.Login(context.Background(), &authv1.LoginRequest{Email: "ada@example.com", Password: "x"})
	requireRetryableOutage(t, err)
}
