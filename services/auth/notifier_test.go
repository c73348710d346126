package auth

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/identity"
)

// fakeNotifications records Send calls, and the service the chain says made them, as
// the notification service would receive them.
type fakeNotifications struct {
	notificationv1.UnimplementedNotificationServiceServer
	mu     sync.Mutex
	got    *notificationv1.SendRequest
	caller string
}

func (f *fakeNotifications) Send(ctx context.Context, req *notificationv1.SendRequest) (*notificationv1.SendResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = req
	f.caller, _ = identity.ServiceFromContext(ctx)
	return &notificationv1.SendResponse{NotificationId: "n1"}, nil
}

func TestNotificationClientSendsSecurityEmailWithServiceToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tokens, err := authn.NewHMACServiceTokens([]byte(testServiceTokenSecret), time.Minute, nil)
	require.NoError(t, err)
	// Served as the notification process serves it: the real authn interceptor, which
	// admits Send, an INTERNAL RPC, only with a service credential.
	in, err := authn.NewInterceptor(authn.InterceptorConfig{
		Tokens: b.srv.Verifier(), APIKeys: b.srv.APIKeys(), Services: tokens, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	fake := &fakeNotifications{}
	srv := grpctest.Start(t, func(r grpc.ServiceRegistrar) { notificationv1.RegisterNotificationServiceServer(r, fake) },
		grpctest.WithAuthenticator(in))
	mail := securityEmail{
		UserID: "0190a0a0-0000-7000-8000-000000000001", Template: "verify_email",
		Data: map[string]string{"link": "https://x/verify-email?token=t"}, IdempotencyKey: "verify_email:1",
	}

	t.Run("with the process's service credential on the connection", func(t *testing.T) {
		// As New builds it from deps.Peers["notification"], whose calls carry the credential.
		conn := srv.Dial(t, grpc.WithPerRPCCredentials(tokens.PerRPCCredentials("auth")))
		m := notificationClient{client: notificationv1.NewNotificationServiceClient(conn)}
		require.NoError(t, m.Send(t.Context(), mail))

		fake.mu.Lock()
		defer fake.mu.Unlock()
		require.Equal(t, "auth", fake.caller, "notification sees auth as the caller")
		require.Equal(t, "0190a0a0-0000-7000-8000-000000000001", fake.got.GetUserId())
		require.Equal(t, "verify_email", fake.got.GetTemplate())
		require.Equal(t, notificationv1.Category_CATEGORY_SECURITY, fake.got.GetCategory())
		require.Equal(t, []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL}, fake.got.GetChannels())
		require.Equal(t, "verify_email:1", fake.got.GetIdempotencyKey())
	})
	t.Run("without it, notification refuses", func(t *testing.T) {
		m := notificationClient{client: notificationv1.NewNotificationServiceClient(srv.Conn)}
		err := m.Send(t.Context(), mail)
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	})
}
