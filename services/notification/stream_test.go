package notification

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/redistest"
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

// A stream ends with UNAUTHENTICATED within a second of its session ending (logout,
// password reset, an administrator disabling the account: each writes the tombstone),
// called directly on the service, with no edge in front of it.
func TestStreamEndsWhenItsSessionEnds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	userID := uuid.New()
	token, sessionID := b.authn.SignIn(t, userID, time.Hour)
	stream, ended := b.openStream(t, grpctest.Bearer(context.Background(), token))
	receive(t, stream)

	require.NoError(t, b.authn.Sessions.End(context.Background(), sessionID, time.Now().Add(time.Minute)))
	endedAt := time.Now()
	select {
	case err := <-ended:
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		require.Less(t, time.Since(endedAt), time.Second)
	case <-time.After(2 * time.Second):
		t.Fatal("the stream outlived its session")
	}
}

// A stream ends with UNAUTHENTICATED when the access token that opened it expires,
// though its session lives on: the client refreshes and reconnects.
func TestStreamEndsWhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token, _ := b.authn.SignIn(t, uuid.New(), 2*time.Second)
	stream, ended := b.openStream(t, grpctest.Bearer(context.Background(), token))
	receive(t, stream)
	select {
	case err := <-ended:
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), "expired")
	case <-time.After(4 * time.Second):
		t.Fatal("the stream outlived its two-second token")
	}
}

// Every stream of a process shares one Redis connection, whatever the number of streams
// and users: today's streams each held their own.
func TestStreamsShareOneRedisConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A server whose Redis connections carry a name of their own, to count them.
	name := "notification-streams-" + uuid.NewString()
	opts, err := redis.ParseURL(redistest.URL())
	require.NoError(t, err)
	opts.ClientName = name
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	deps := b.deps
	deps.Redis = rdb
	api := b.serve(t, newTestServer(t, deps, b.cfg))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	users := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	var streams []<-chan *notificationv1.StreamNotificationsResponse
	for _, u := range users {
		for range 2 {
			s, err := api.user.StreamNotifications(grpctest.Bearer(ctx, b.authn.AccessToken(t, u)), &notificationv1.StreamNotificationsRequest{})
			require.NoError(t, err)
			c := make(chan *notificationv1.StreamNotificationsResponse, 4)
			go func() {
				for {
					m, err := s.Recv()
					if err != nil {
						return
					}
					c <- m
				}
			}()
			receive(t, c)
			streams = append(streams, c)
		}
	}
	list, err := b.deps.Redis.ClientList(ctx).Result()
	require.NoError(t, err)
	subscribed := 0
	for line := range strings.SplitSeq(list, "\n") {
		if strings.Contains(line, "name="+name+" ") && !strings.Contains(line, " sub=0 ") {
			subscribed++
		}
	}
	require.Equal(t, 1, subscribed, "six streams of three users hold one subscribed connection\n%s", list)

	// Each stream still hears its own user's notifications, and only those.
	b.sendInApp(t, users[1], notificationv1.Category_CATEGORY_ACCOUNT, 1)
	require.NotNil(t, receive(t, streams[2]).GetNotification())
	require.NotNil(t, receive(t, streams[3]).GetNotification())
	for _, i := range []int{0, 1, 4, 5} {
		select {
		case m := <-streams[i]:
			t.Fatalf("stream %d got another user's notification %v", i, m)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// One user may hold at most BACKPLANE_NOTIFY_MAX_STREAMS_PER_USER streams at once: one
// more is RESOURCE_EXHAUSTED with a QuotaFailure, and closing one makes room.
func TestStreamsPerUserAreCapped(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaxStreamsPerUser = 2 })
	userID := uuid.New()
	var cancels []context.CancelFunc
	for range 2 {
		ctx, cancel := context.WithCancel(b.as(t, userID))
		cancels = append(cancels, cancel)
		defer cancel()
		stream, _ := b.openStream(t, ctx)
		receive(t, stream)
	}
	_, ended := b.openStream(t, b.as(t, userID))
	err := <-ended
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	var quota *errdetails.QuotaFailure
	for _, d := range status.Convert(err).Details() {
		if q, ok := d.(*errdetails.QuotaFailure); ok {
			quota = q
		}
	}
	require.NotNil(t, quota, "the answer names the quota")
	require.Contains(t, quota.GetViolations()[0].GetDescription(), "BACKPLANE_NOTIFY_MAX_STREAMS_PER_USER")

	// Another user is not held back by this one's streams.
	other, _ := b.openStream(t, b.as(t, uuid.New()))
	receive(t, other)

	// Closing a stream makes room for a new one.
	cancels[0]()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithCancel(b.as(t, userID))
		defer cancel()
		stream, ended := b.openStream(t, ctx)
		select {
		case m := <-stream:
			return m != nil
		case err := <-ended:
			t.Logf("still refused: %v", err)
			return false
		}
	}, 2*time.Second, 20*time.Millisecond)
}
