package notification

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
)

// sendInApp sends n in-app notifications of a category to a user, oldest first.
func (b *bundle) sendInApp(t *testing.T, userID uuid.UUID, category notificationv1.Category, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for range n {
		ids = append(ids, b.send(t, &notificationv1.SendRequest{
			Recipient: &notificationv1.SendRequest_UserId{UserId: userID.String()},
			Category:  category, Channels: []notificationv1.Channel{notificationv1.Channel_CHANNEL_IN_APP},
		}))
	}
	return ids
}

func TestListNotificationsPagesNewestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	userID := uuid.New()
	ctx := b.as(t, userID)
	ids := b.sendInApp(t, userID, notificationv1.Category_CATEGORY_ACCOUNT, 5)
	b.sendInApp(t, uuid.New(), notificationv1.Category_CATEGORY_ACCOUNT, 2) // someone else's

	var got []string
	token := ""
	for {
		resp, err := b.api.user.ListNotifications(ctx, &notificationv1.ListNotificationsRequest{PageSize: 2, PageToken: token})
		require.NoError(t, err)
		require.EqualValues(t, 5, resp.GetUnreadCount())
		for _, n := range resp.GetNotifications() {
			got = append(got, n.GetId())
			require.Equal(t, "Hello", n.GetTitle())
			require.Equal(t, map[string]string{"title": "Hello", "body": "Something happened."}, n.GetData())
			require.Len(t, n.GetDeliveries(), 1)
			require.Equal(t, notificationv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, n.GetDeliveries()[0].GetStatus())
		}
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
	}
	want := make([]string, len(ids))
	for i, id := range ids {
		want[len(ids)-1-i] = id.String()
	}
	require.Equal(t, want, got)

	_, err := b.api.user.ListNotifications(ctx, &notificationv1.ListNotificationsRequest{PageToken: "nonsense"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = b.api.user.ListNotifications(context.Background(), &notificationv1.ListNotificationsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

func TestMarkReadOnlyOwnNotifications(t *testing.T) {
	t.Parallel()
	b := setup(t)
	userID, otherID := uuid.New(), uuid.New()
	ctx := b.as(t, userID)
	mine := b.sendInApp(t, userID, notificationv1.Category_CATEGORY_ACCOUNT, 2)
	theirs := b.sendInApp(t, otherID, notificationv1.Category_CATEGORY_ACCOUNT, 1)

	_, err := b.api.user.MarkNotificationRead(ctx, &notificationv1.MarkNotificationReadRequest{NotificationId: theirs[0].String()})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = b.api.user.MarkNotificationRead(ctx, &notificationv1.MarkNotificationReadRequest{NotificationId: uuid.NewString()})
	require.Equal(t, codes.NotFound, status.Code(err))

	resp, err := b.api.user.MarkNotificationRead(ctx, &notificationv1.MarkNotificationReadRequest{NotificationId: mine[0].String()})
	require.NoError(t, err)
	require.True(t, resp.GetNotification().GetRead())
	again, err := b.api.user.MarkNotificationRead(ctx, &notificationv1.MarkNotificationReadRequest{NotificationId: mine[0].String()})
	require.NoError(t, err)
	require.Equal(t, resp.GetNotification().GetReadTime().AsTime(), again.GetNotification().GetReadTime().AsTime(), "marking twice changes nothing")

	unread, err := b.api.user.ListNotifications(ctx, &notificationv1.ListNotificationsRequest{UnreadOnly: true})
	require.NoError(t, err)
	require.Len(t, unread.GetNotifications(), 1)
	require.Equal(t, mine[1].String(), unread.GetNotifications()[0].GetId())
	require.EqualValues(t, 1, unread.GetUnreadCount())

	other, err := b.api.user.ListNotifications(b.as(t, otherID), &notificationv1.ListNotificationsRequest{UnreadOnly: true})
	require.NoError(t, err)
	require.EqualValues(t, 1, other.GetUnreadCount(), "the other user's notification is untouched")
}

func TestMarkAllNotificationsReadWithinFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	userID := uuid.New()
	ctx := b.as(t, userID)
	b.sendInApp(t, userID, notificationv1.Category_CATEGORY_BILLING, 2)
	b.sendInApp(t, userID, notificationv1.Category_CATEGORY_USAGE, 3)

	resp, err := b.api.user.MarkAllNotificationsRead(ctx, &notificationv1.MarkAllNotificationsReadRequest{Category: notificationv1.Category_CATEGORY_BILLING})
	require.NoError(t, err)
	require.EqualValues(t, 2, resp.GetMarkedCount())
	require.EqualValues(t, 3, resp.GetUnreadCount())

	resp, err = b.api.user.MarkAllNotificationsRead(ctx, &notificationv1.MarkAllNotificationsReadRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 3, resp.GetMarkedCount())
	require.EqualValues(t, 0, resp.GetUnreadCount())
}
