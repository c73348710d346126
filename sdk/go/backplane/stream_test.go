package backplane_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/sdk/go/backplane"
)

// Streams carry the session's credential, refreshed first when it is stale, and fail
// with *Error like unary calls.
func TestStreamsAreAuthenticatedAndTheirErrorsTyped(t *testing.T) {
	t.Parallel()
	var sent calls
	c := newClient(t, target, sent.option())
	var skew atomic.Int64
	backplane.SetClock(c, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	signUp(t, c)

	skew.Store(int64(16 * time.Minute))
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := c.Notification.StreamNotifications(ctx, &notificationv1.StreamNotificationsRequest{})
	require.NoError(t, err)
	first, err := stream.Recv()
	require.NoError(t, err)
	require.Zero(t, first.GetUnreadCount())
	require.Equal(t, 1, sent.of(refreshMethod), "the stale token was replaced before the stream opened")

	cancel()
	_, err = stream.Recv()
	requireCode(t, codes.Canceled, err)
	require.ErrorIs(t, err, context.Canceled)

	// Without a session the stream is refused, with the request id to quote.
	anonymous := newClient(t, target)
	stream, err = anonymous.Notification.StreamNotifications(t.Context(), &notificationv1.StreamNotificationsRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	e := asError(t, err)
	require.Equal(t, codes.Unauthenticated, e.Code)
	require.NotEmpty(t, e.RequestID)
}
