package notification

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/internal/validation"
)

// testUserKey is the metadata key the test's stand-in for the authentication
// interceptor reads the caller from.
const testUserKey = "x-test-user-id"

func testAuthentication(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(testUserKey)) > 0 {
		ctx = identity.WithPrincipal(ctx, identity.Principal{UserID: md.Get(testUserKey)[0]})
	}
	return handler(ctx, req)
}

// startService runs the service as the mesh does: configuration read from env by its
// Definition, Register on a real gRPC server with the shared interceptors, and its
// workers running.
func startService(t *testing.T, sg *fakeSendgrid, env map[string]string) notificationv1.NotificationServiceClient {
	t.Helper()
	deps := service.Deps{
		Logger:    slog.New(slog.DiscardHandler),
		DB:        dbtest.NewPool(t, "notification", migrations()),
		Redis:     redistest.Client(t),
		PublicURL: testPublicURL,
		DataDir:   t.TempDir(),
	}
	v, err := validation.New()
	require.NoError(t, err)
	srv, err := grpcserver.New(grpcserver.Config{
		Logger: deps.Logger, TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: noop.NewMeterProvider(),
		Propagator: propagation.TraceContext{}, Validator: v,
		Authenticate: grpcserver.Interceptors{Unary: []grpc.UnaryServerInterceptor{testAuthentication}},
	})
	require.NoError(t, err)
	start, err := Definition().LoadConfig(config.NewEnv(func(k string) string { return env[k] }))
	require.NoError(t, err)
	inst, err := start(context.Background(), deps)
	require.NoError(t, err)
	inst.Register(srv.Registrar())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, inst.Stop(ctx))
	})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return notificationv1.NewNotificationServiceClient(conn)
}

func TestServiceOverGRPC(t *testing.T) {
	t.Parallel()
	sg := newFakeSendgrid(t)
	client := startService(t, sg, map[string]string{
		"BACKPLANE_SENDGRID_API_KEY":     "SG.test-key",
		"BACKPLANE_SENDGRID_BASE_URL":    sg.URL,
		"BACKPLANE_EMAIL_FROM":           "Backplane <no-reply@example.test>",
		"BACKPLANE_NOTIFY_WORKERS":       "2",
		"BACKPLANE_NOTIFY_POLL_INTERVAL": "50ms",
	})
	ctx := context.Background()

	resp, err := client.Send(ctx, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_Email{Email: "grpc@example.test"},
		Template:  "new_sign_in", Data: map[string]string{"ip_address": "192.0.2.7"},
		Category: notificationv1.Category_CATEGORY_SECURITY,
		Channels: []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL}, IdempotencyKey: "sign-in:1",
	})
	require.NoError(t, err)
	id := uuid.MustParse(resp.GetNotificationId())
	require.Eventually(t, func() bool { return len(sg.sentFor(id)) == 1 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "New sign-in to your account", sg.sentFor(id)[0].Subject)

	// The shared interceptors validate the request against the proto's rules.
	_, err = client.Send(ctx, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_Email{Email: "grpc@example.test"},
		Template:  "Not A Name", Category: notificationv1.Category_CATEGORY_SECURITY,
		Channels: []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL}, IdempotencyKey: "k",
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	_, err = client.ListNotifications(ctx, &notificationv1.ListNotificationsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))

	userCtx := metadata.AppendToOutgoingContext(ctx, testUserKey, uuid.NewString())
	_, err = client.MarkNotificationRead(userCtx, &notificationv1.MarkNotificationReadRequest{NotificationId: id.String()})
	require.Equal(t, codes.NotFound, status.Code(err), "an email to an address is in nobody's inbox")

	_, err = client.UpdateNotificationPreferences(userCtx, &notificationv1.UpdateNotificationPreferencesRequest{
		Preferences: &notificationv1.NotificationPreferences{Preferences: []*notificationv1.NotificationPreference{
			pref(notificationv1.Category_CATEGORY_SECURITY, notificationv1.Channel_CHANNEL_EMAIL, false),
		}},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestDefinitionRefusesBadSettingsBeforeStarting(t *testing.T) {
	t.Parallel()
	_, err := Definition().LoadConfig(config.NewEnv(func(k string) string {
		if k == "BACKPLANE_NOTIFY_MAX_ATTEMPTS" {
			return "lots"
		}
		return ""
	}))
	require.ErrorContains(t, err, "BACKPLANE_NOTIFY_MAX_ATTEMPTS")
}
