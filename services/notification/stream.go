package notification

import (
	"errors"
	"time"

	"github.com/google/uuid"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/notification/dbsqlc"
)

// streamKeepAlive is how often an idle stream sends a message without a notification,
// so that proxies do not close it.
const streamKeepAlive = 30 * time.Second

// StreamNotifications pushes the caller's new in-app notifications as they are sent, on
// any replica, with the unread count.
func (s *Server) StreamNotifications(_ *notificationv1.StreamNotificationsRequest, stream notificationv1.NotificationService_StreamNotificationsServer) error {
	ctx := stream.Context()
	userID, err := identity.UserID(ctx)
	if err != nil {
		return err
	}
	// Subscribe before counting, so a notification sent in between is not missed.
	sub, err := s.feed.subscribe(ctx, userID)
	if err != nil {
		return fault.Wrap(fault.Unavailable, err, "notifications cannot be streamed now")
	}
	defer func() { _ = sub.Close() }()

	unread, err := s.store.unreadCount(ctx, userID)
	if err != nil {
		return fault.Wrap(fault.Internal, err, "could not count notifications")
	}
	if err := stream.Send(&notificationv1.StreamNotificationsResponse{UnreadCount: unread}); err != nil {
		return err
	}

	keepAlive := time.NewTicker(streamKeepAlive)
	defer keepAlive.Stop()
	messages := sub.Channel()
	for {
		resp := &notificationv1.StreamNotificationsResponse{}
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-messages:
			if !ok {
				return fault.New(fault.Unavailable, "the notification stream ended; reconnect")
			}
			id, err := uuid.Parse(msg.Payload)
			if err != nil {
				continue
			}
			row, err := s.store.inboxNotification(ctx, userID, id)
			if errors.Is(err, database.ErrNotFound) {
				continue
			}
			if err != nil {
				return fault.Wrap(fault.Internal, err, "could not read the notification")
			}
			n, err := s.withDeliveries(ctx, []dbsqlc.Notification{row})
			if err != nil {
				return err
			}
			resp.Notification = n[0]
		case <-keepAlive.C:
		}
		if resp.UnreadCount, err = s.store.unreadCount(ctx, userID); err != nil {
			return fault.Wrap(fault.Internal, err, "could not count notifications")
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}
