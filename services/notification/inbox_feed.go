package notification

import (
	"context"
	"log/slog"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// inboxFeed carries "a notification arrived" between replicas over Redis pub/sub, so a
// stream held open on one replica hears of a Send handled on another. Pub/sub is
// fire-and-forget, which is enough: the inbox in PostgreSQL is the record, and a client
// that missed a message catches up with ListNotifications.
type inboxFeed struct {
	rdb redis.UniversalClient
	log *slog.Logger
}

// inboxChannel is the pub/sub channel of one user's inbox.
func inboxChannel(userID uuid.UUID) string {
	return "backplane:notification:inbox:" + userID.String()
}

// publish announces a new notification; a failure is logged, not returned, because the
// notification is already stored and listed.
func (f *inboxFeed) publish(ctx context.Context, userID, notificationID uuid.UUID) {
	if err := f.rdb.Publish(ctx, inboxChannel(userID), notificationID.String()).Err(); err != nil {
		f.log.WarnContext(ctx, "could not announce a notification to open streams", "error", err)
	}
}

// subscribe listens to one user's inbox. It returns once Redis confirmed the
// subscription, so that nothing published afterwards is missed.
func (f *inboxFeed) subscribe(ctx context.Context, userID uuid.UUID) (*redis.PubSub, error) {
	ps := f.rdb.Subscribe(ctx, inboxChannel(userID))
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, err
	}
	return ps, nil
}
