package notification

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// inboxFeed carries "a notification arrived" between replicas over Redis pub/sub, so a
// stream held open on one replica hears of a Send handled on another. Pub/sub is
// fire-and-forget, which is enough: the inbox in PostgreSQL is the record, and a client
// that missed a message catches up with ListNotifications.
//
// A process holds one subscription, on one Redis connection, whatever the number of
// streams: it subscribes to a user's channel when the first of their streams opens here
// and unsubscribes when the last closes, and fans each message out to the local
// streams. It also counts each user's open streams, which the per-user cap reads.
type inboxFeed struct {
	rdb redis.UniversalClient
	log *slog.Logger

	mu     sync.Mutex
	ps     *redis.PubSub // nil until the first stream, and again after a broken connection
	topics map[string]*inboxTopic
	// streams counts each user's open streams in this process.
	streams map[uuid.UUID]int
}

// inboxTopic is one user's channel and the local streams listening to it.
type inboxTopic struct {
	subs map[*inboxSub]struct{}
	// pending counts SUBSCRIBE commands Redis has not confirmed yet; ready is closed
	// when it reaches zero, from which point nothing published is missed.
	pending int
	ready   chan struct{}
	ps      *redis.PubSub
}

// inboxSub is one stream's share of the feed.
type inboxSub struct {
	// C carries the ids of the user's new notifications; it is closed when the shared
	// connection broke, and the stream must end so that its client reconnects and
	// catches up.
	C      chan string
	feed   *inboxFeed
	userID uuid.UUID
	once   sync.Once
}

// inboxSubBuffer is how many announcements a slow stream may fall behind before
// further ones are dropped for it (it catches up through its unread count).
const inboxSubBuffer = 16

func newInboxFeed(rdb redis.UniversalClient, log *slog.Logger) *inboxFeed {
	return &inboxFeed{rdb: rdb, log: log, topics: map[string]*inboxTopic{}, streams: map[uuid.UUID]int{}}
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

// errTooManyStreams means the user already holds max streams in this process.
var errTooManyStreams = errors.New("notification: too many open streams")

// subscribe listens to one user's inbox, unless they already hold max streams here. It
// returns once Redis confirmed the subscription, so that nothing published afterwards
// is missed. The caller must close the subscription.
func (f *inboxFeed) subscribe(ctx context.Context, userID uuid.UUID, maxStreams int) (*inboxSub, error) {
	channel := inboxChannel(userID)
	f.mu.Lock()
	if f.streams[userID] >= maxStreams {
		f.mu.Unlock()
		return nil, errTooManyStreams
	}
	if f.ps == nil {
		// An empty SUBSCRIBE opens nothing yet: the connection is made by the first
		// channel's SUBSCRIBE below.
		f.ps = f.rdb.Subscribe(context.WithoutCancel(ctx))
		go f.receive(context.WithoutCancel(ctx), f.ps)
	}
	t := f.topics[channel]
	if t == nil {
		t = &inboxTopic{subs: map[*inboxSub]struct{}{}, ps: f.ps}
		f.topics[channel] = t
	}
	sub := &inboxSub{C: make(chan string, inboxSubBuffer), feed: f, userID: userID}
	t.subs[sub] = struct{}{}
	f.streams[userID]++
	if len(t.subs) == 1 {
		t.pending++
		t.ready = make(chan struct{})
		if err := t.ps.Subscribe(ctx, channel); err != nil {
			f.mu.Unlock()
			sub.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	ready := t.ready
	f.mu.Unlock()
	select {
	case <-ready:
		return sub, nil
	case <-ctx.Done():
		sub.Close(context.WithoutCancel(ctx))
		return nil, ctx.Err()
	case <-time.After(5 * time.Second):
		sub.Close(context.WithoutCancel(ctx))
		return nil, errors.New("notification: Redis did not confirm the subscription")
	}
}

// Close leaves the feed; the last stream of a user here unsubscribes their channel.
func (s *inboxSub) Close(ctx context.Context) {
	s.once.Do(func() {
		f := s.feed
		channel := inboxChannel(s.userID)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.streams[s.userID]--; f.streams[s.userID] <= 0 {
			delete(f.streams, s.userID)
		}
		t := f.topics[channel]
		if t == nil {
			return // the connection broke and the topic went with it
		}
		if _, ok := t.subs[s]; !ok {
			return
		}
		delete(t.subs, s)
		if len(t.subs) == 0 {
			delete(f.topics, channel)
			if err := t.ps.Unsubscribe(ctx, channel); err != nil {
				f.log.WarnContext(ctx, "could not unsubscribe from an inbox", "error", err)
			}
		}
	})
}

// receive fans out what the shared connection receives until it is closed or breaks.
// go-redis would reconnect by itself, but what was published meanwhile is lost; so a
// broken connection ends every local stream, whose clients reconnect (with a fresh
// unread count), and the next stream opens a new subscription.
func (f *inboxFeed) receive(ctx context.Context, ps *redis.PubSub) {
	for {
		msg, err := ps.ReceiveTimeout(ctx, time.Minute)
		var netErr interface{ Timeout() bool }
		switch {
		case err != nil && errors.As(err, &netErr) && netErr.Timeout():
			// Idle: make sure the connection is still there.
			if err := ps.Ping(ctx); err == nil {
				continue
			}
			f.broken(ps)
			return
		case err != nil:
			f.broken(ps)
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			f.mu.Lock()
			if t := f.topics[m.Channel]; t != nil && t.ps == ps && t.pending > 0 {
				if t.pending--; t.pending == 0 {
					close(t.ready)
				}
			}
			f.mu.Unlock()
		case *redis.Message:
			f.mu.Lock()
			if t := f.topics[m.Channel]; t != nil && t.ps == ps {
				for s := range t.subs {
					select {
					case s.C <- m.Payload:
					default:
					}
				}
			}
			f.mu.Unlock()
		}
	}
}

// broken ends the streams of a connection that failed and forgets it.
func (f *inboxFeed) broken(ps *redis.PubSub) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ps == ps {
		f.ps = nil
	}
	for channel, t := range f.topics {
		if t.ps != ps {
			continue
		}
		for s := range t.subs {
			close(s.C)
		}
		delete(f.topics, channel)
	}
	_ = ps.Close()
}
