package auth

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/authn"
)

// fakeNotifications records Send calls, in memory, as the notification service would
// receive them.
type fakeNotifications struct {
	notificationv1.UnimplementedNotificationServiceServer
	got   *notificationv1.SendRequest
	token string
}

func (f *fakeNotifications) Send(ctx context.Context, req *notificationv1.SendRequest) (*notificationv1.SendResponse, error) {
	f.got = req
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(authn.ServiceTokenHeader); len(v) == 1 {
		f.token = v[0]
	}
	return &notificationv1.SendResponse{NotificationId: "n1"}, nil
}

func TestNotificationClientSendsSecurityEmailWithServiceToken(t *testing.T) {
	t.Parallel()
	fake := &fakeNotifications{}
	lis := bufconn.Listen(1 << 16)
	srv := grpc.NewServer()
	notificationv1.RegisterNotificationServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///notification",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	tokens, err := authn.NewHMACServiceTokens([]byte("0123456789abcdef0123456789abcdef"), time.Minute, nil)
	require.NoError(t, err)
	m := notificationClient{
		client: notificationv1.NewNotificationServiceClient(conn),
		opts:   []grpc.CallOption{grpc.PerRPCCredentials(tokens.PerRPCCredentials("auth"))},
	}
	require.NoError(t, m.Send(context.Background(), securityEmail{
		UserID: "0190a0a0-0000-7000-8000-000000000001", Template: "verify_email",
		Data: map[string]string{"link": "https://x/verify-email?token=t"}, IdempotencyKey: "verify_email:1",
	}))

	require.Equal(t, "0190a0a0-0000-7000-8000-000000000001", fake.got.GetUserId())
	require.Equal(t, "verify_email", fake.got.GetTemplate())
	require.Equal(t, notificationv1.Category_CATEGORY_SECURITY, fake.got.GetCategory())
	require.Equal(t, []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL}, fake.got.GetChannels())
	require.Equal(t, "verify_email:1", fake.got.GetIdempotencyKey())
	service, err := tokens.Check(fake.token)
	require.NoError(t, err)
	require.Equal(t, "auth", service)
}
