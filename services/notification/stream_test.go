package notification

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
)

// openStream opens StreamNotifications over gRPC with ctx and delivers what the server
// pushes to the returned channel, which closes with the error that ended the stream.
func (b *bundle) openStream(t *testing.T, ctx context.Context) (<-chan *notificationv1.StreamNotificationsResponse, <-chan error) {
	t.Helper()
	stream, err := b.api.user.StreamNotifications(ctx, &notificationv1.StreamNotificationsRequest{})
	require.NoError(t, err)
	sent := make(chan *notificationv1.StreamNotificationsResponse, 10)
	ended := make(chan error, 1)
	go func() {
		defer close(sent)
		for {
			m, err := stream.Recv()
			if err != nil {
				ended <- err
				return
			}
			sent <- m
		}
	}()
	return sent, ended
}

func TestStreamPushesNotificationsFromAnotherReplica(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The stream is open on one replica; Send runs on another.
	other := b.serve(t, newTestServer(t, b.deps, b.cfg))
	userID := uuid.New()
	b.sendInApp(t, userID, notificationv1.Category_CATEGORY_ACCOUNT, 1)

	ctx, cancel := context.WithCancel(b.as(t, userID))
	stream, ended := b.openStream(t, ctx)

	first := receive(t, stream)
	require.Nil(t, first.GetNotification())
	require.EqualValues(t, 1, first.GetUnreadCount())

	sentAt := time.Now()
	resp, err := other.internal.Send(context.Background(), &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_UserId{UserId: userID.String()},
		Template:  "message", Data: map[string]string{"title": "Live", "body": "now"},
		Category: notificationv1.Category_CATEGORY_USAGE, Channels: []notificationv1.Channel{notificationv1.Channel_CHANNEL_IN_APP},
		IdempotencyKey: uuid.NewString(),
	})
	require.NoError(t, err)

	pushed := receive(t, stream)
	require.Less(t, time.Since(sentAt), time.Second)
	require.Equal(t, resp.GetNotificationId(), pushed.GetNotification().GetId())
	require.Equal(t, "Live", pushed.GetNotification().GetTitle())
	require.EqualValues(t, 2, pushed.GetUnreadCount())

	// Another user's notification is not pushed here.
	b.sendInApp(t, uuid.New(), notificationv1.Category_CATEGORY_USAGE, 1)
	select {
	case m := <-stream:
		t.Fatalf("unexpected message %v", m)
	case <-time.After(200 * time.Millisecond):
	}

	cancel()
	require.Equal(t, codes.Canceled, status.Code(<-ended))
}

func TestStreamRefusesACallerWithoutAToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, ended := b.openStream(t, context.Background())
	require.Equal(t, codes.Unauthenticated, status.Code(<-ended))
}

func receive(t *testing.T, s <-chan *notificationv1.StreamNotificationsResponse) *notificationv1.StreamNotificationsResponse {
	t.Helper()
	select {
	case m := <-s:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no stream message within 5s")
		return nil
	}
}
