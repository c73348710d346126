package notification

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
)

// recordingStream is the server side of a StreamNotifications call, delivering what the
// handler sends to a channel.
type recordingStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent chan *notificationv1.StreamNotificationsResponse
}

func (s *recordingStream) Context() context.Context { return s.ctx }

func (s *recordingStream) Send(m *notificationv1.StreamNotificationsResponse) error {
	s.sent <- m
	return nil
}

func TestStreamPushesNotificationsFromAnotherReplica(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The stream is open on one replica; Send runs on another.
	other := newTestServer(t, b.deps, b.cfg)
	userID := uuid.New()
	b.sendInApp(t, userID, notificationv1.Category_CATEGORY_ACCOUNT, 1)

	ctx, cancel := context.WithCancel(userContext(userID))
	stream := &recordingStream{ctx: ctx, sent: make(chan *notificationv1.StreamNotificationsResponse, 10)}
	done := make(chan error, 1)
	go func() { done <- b.server.StreamNotifications(&notificationv1.StreamNotificationsRequest{}, stream) }()

	first := receive(t, stream)
	require.Nil(t, first.GetNotification())
	require.EqualValues(t, 1, first.GetUnreadCount())

	sentAt := time.Now()
	resp, err := other.Send(context.Background(), &notificationv1.SendRequest{
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
	case m := <-stream.sent:
		t.Fatalf("unexpected message %v", m)
	case <-time.After(200 * time.Millisecond):
	}

	cancel()
	require.NoError(t, <-done)
}

func receive(t *testing.T, s *recordingStream) *notificationv1.StreamNotificationsResponse {
	t.Helper()
	select {
	case m := <-s.sent:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no stream message within 5s")
		return nil
	}
}
