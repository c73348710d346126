package notification

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

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
	sub, err := s.feed.subscribe(ctx, userID, s.cfg.MaxStreamsPerUser)
	if errors.Is(err, errTooManyStreams) {
		return tooManyStreams(s.cfg.MaxStreamsPerUser)
	}
	if err != nil {
		return fault.Wrap(fault.Unavailable, err, "notifications cannot be streamed now")
	}
	// Unsubscribing must not fail because the client went away.
	defer sub.Close(context.WithoutCancel(ctx))

	unread, err := s.store.unreadCount(ctx, userID)
	if err != nil {
		return fault.Wrap(fault.Internal, err, "could not count notifications")
	}
	if err := stream.Send(&notificationv1.StreamNotificationsResponse{UnreadCount: unread}); err != nil {
		return err
	}

	keepAlive := time.NewTicker(streamKeepAlive)
	defer keepAlive.Stop()
	messages := sub.C
	for {
		resp := &notificationv1.StreamNotificationsResponse{}
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-messages:
			if !ok {
				return fault.New(fault.Unavailable, "the notification stream ended; reconnect")
			}
			id, err := uuid.Parse(msg)
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

// tooManyStreams answers a user who already holds the most streams this process allows
// one user: RESOURCE_EXHAUSTED (HTTP 429) with a QuotaFailure naming the limit, so that
// a client closes a stream it forgot rather than retrying.
func tooManyStreams(limit int) error {
	return fault.New(fault.ResourceExhausted, fmt.Sprintf("at most %d notification streams may be open at once; close one first", limit)).
		WithDetails(&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject:     "user",
			Description: fmt.Sprintf("open notification streams per user (BACKPLANE_NOTIFY_MAX_STREAMS_PER_USER = %d)", limit),
		}}})
}
