package notification

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/stretchr/testify/require"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/services/notification/dbsqlc"
)

func TestDeliverySendsThroughSendgrid(t *testing.T) {
	t.Parallel()
	b := setup(t)
	startWorkers(t, b.server, 1)
	userID := uuid.New()

	id := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_UserId{UserId: userID.String()}})

	v := b.waitForStatus(t, id, statusSent)
	require.Equal(t, userAddress(userID), v.Address)
	sent := b.sendgrid.sentFor(id)
	require.Len(t, sent, 1)
	require.Equal(t, userAddress(userID), sent[0].To)
	require.Equal(t, "Hello", sent[0].Subject)
	require.Equal(t, "Bearer SG.test-key", sent[0].Authorization)
	require.Equal(t, "List-Unsubscribe=One-Click", sent[0].Headers["List-Unsubscribe-Post"])
	require.Regexp(t, `^<`+testPublicURL+`/v1/unsubscribe/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+>$`, sent[0].Headers["List-Unsubscribe"])
}

func TestDeliveryOfSecurityEmailHasNoUnsubscribe(t *testing.T) {
	t.Parallel()
	b := setup(t)
	startWorkers(t, b.server, 1)

	id := b.send(t, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_Email{Email: "New@Example.test"},
		Template:  "verify_email", Data: map[string]string{"token": "tok"},
		Category: notificationv1.Category_CATEGORY_SECURITY,
	})

	b.waitForStatus(t, id, statusSent)
	sent := b.sendgrid.sentFor(id)
	require.Len(t, sent, 1)
	require.Equal(t, "new@example.test", sent[0].To)
	require.NotContains(t, sent[0].Headers, "List-Unsubscribe")
	require.NotContains(t, sent[0].Headers, "List-Unsubscribe-Post")
}

func TestDeliveryRetriesServerErrorsAndRateLimitsThenSendsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sendgrid.fail(
		fakeReply{status: http.StatusInternalServerError},
		fakeReply{status: http.StatusTooManyRequests, header: http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Unix(), 10)}}},
		fakeReply{status: http.StatusServiceUnavailable},
	)
	startWorkers(t, b.server, 2)

	id := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_Email{Email: "a@example.test"}})

	v := b.waitForStatus(t, id, statusSent)
	require.Equal(t, 4, v.Attempts)
	require.Len(t, b.sendgrid.sentFor(id), 1)
}

func TestDeliveryFailsAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t, func(s *Config) { s.MaxAttempts = 3 })
	for range 5 {
		b.sendgrid.fail(fakeReply{status: http.StatusBadGateway})
	}
	startWorkers(t, b.server, 1)

	id := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_Email{Email: "a@example.test"}})

	v := b.waitForStatus(t, id, statusFailed)
	require.Equal(t, 3, v.Attempts)
	require.Contains(t, v.LastError, "sendgrid answered 502")
	require.Equal(t, "gave up after 3 attempts; last: SendGrid answered 502: scripted failure", v.Reason)
	require.Empty(t, b.sendgrid.sentFor(id))
}

func TestDeliveryFailsAtOnceOnClientError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sendgrid.fail(fakeReply{status: http.StatusBadRequest})
	startWorkers(t, b.server, 1)

	id := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_Email{Email: "a@example.test"}})

	v := b.waitForStatus(t, id, statusFailed)
	require.Equal(t, 1, v.Attempts)
	require.Contains(t, v.LastError, "sendgrid answered 400")
	require.Equal(t, "SendGrid answered 400: scripted failure", v.Reason)
}

func TestDeliveryAfterCrashBetweenClaimAndMark(t *testing.T) {
	t.Parallel()
	lease := 2 * time.Second
	b := setup(t, func(s *Config) { s.Lease = lease })
	id := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_Email{Email: "a@example.test"}})

	// A worker claims the email's job as River's workers do, begins the attempt, and
	// dies before sending or marking it.
	claimedAt := time.Now()
	claimed, err := b.server.jobs.River().Driver().GetExecutor().JobGetAvailable(context.Background(), &riverdriver.JobGetAvailableParams{
		ClientID: "a-worker-that-dies", MaxAttemptedBy: 100, MaxToLock: 10, Queue: river.QueueDefault, Schema: jobs.Schema(serviceName),
	})
	require.NoError(t, err)
	require.Len(t, claimed.Jobs, 1)
	_, err = b.server.store.beginEmailAttempt(context.Background(), id, claimed.Jobs[0].Attempt)
	require.NoError(t, err)

	// Another replica's workers run from the moment of the crash; they lead, so their
	// rescuer looks for lost jobs at its start (and every 30 s, River's pace), while
	// the claim is within its lease.
	leader := startWorkers(t, newTestServer(t, b.deps, b.cfg), 2)
	time.Sleep(time.Until(claimedAt.Add(lease)))
	// A deploy moves the leadership to this replica, whose rescuer starts by finding
	// the job past its lease.
	startWorkers(t, b.server, 2)
	leader()
	v := b.waitForStatus(t, id, statusSent)

	sent := b.sendgrid.sentFor(id)
	require.Len(t, sent, 1)
	require.GreaterOrEqual(t, sent[0].At.Sub(claimedAt), lease-100*time.Millisecond, "delivered before the lease ran out")
	require.Equal(t, 2, v.Attempts)

	// The dead worker's late outcome is refused: the lease is no longer its own.
	err = b.server.store.markSent(context.Background(), dbsqlc.DeliveryMarkEmailSentParams{NotificationID: id, Attempt: 1})
	require.ErrorIs(t, err, errLeaseLost)
}

func TestTwoPoolsDeliverEachMessageExactlyOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A second replica: its own server and workers, same database.
	other := newTestServer(t, b.deps, b.cfg)
	startWorkers(t, b.server, 4)
	startWorkers(t, other, 4)

	const messages = 1000
	ids := make(chan uuid.UUID, messages)
	var wg sync.WaitGroup
	for w := range 4 {
		srv := b.server
		if w%2 == 1 {
			srv = other
		}
		wg.Go(func() {
			for range messages / 4 {
				resp, err := srv.Send(context.Background(), &notificationv1.SendRequest{
					Recipient: &notificationv1.SendRequest_Email{Email: "bulk@example.test"},
					Template:  "message", Data: map[string]string{"title": "t", "body": "b"},
					Category: notificationv1.Category_CATEGORY_PRODUCT,
					Channels: []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL}, IdempotencyKey: uuid.NewString(),
				})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- uuid.MustParse(resp.GetNotificationId())
			}
		})
	}
	wg.Wait()
	close(ids)

	require.Eventually(t, func() bool { return len(b.sendgrid.sent()) >= messages }, 60*time.Second, 50*time.Millisecond)
	// Give a duplicate, if there were one, the time to show up.
	time.Sleep(200 * time.Millisecond)
	count := map[string]int{}
	for _, m := range b.sendgrid.sent() {
		count[m.NotificationID]++
	}
	require.Len(t, count, messages)
	for id := range ids {
		require.Equal(t, 1, count[id.String()], "notification %s", id)
	}
	n, err := b.server.store.q.DeliveryCountByStatus(context.Background(), statusSent)
	require.NoError(t, err)
	require.EqualValues(t, messages, n)
}

func TestBackoffDoublesWithJitter(t *testing.T) {
	t.Parallel()
	// The provider's wait wins over a shorter backoff: jobs.RetryAfter, tested in
	// internal/jobs and by TestDeliveryHonoursRateLimitReset.
	b := Config{RetryBase: time.Second, RetryMax: 8 * time.Second}.backoff()
	require.Equal(t, jobs.Backoff{First: time.Second, Max: 8 * time.Second, Jitter: 0.25}, b)
	for failure, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 30: 8 * time.Second} {
		for range 20 {
			d := b.Delay(failure)
			require.GreaterOrEqual(t, d, want*3/4, "failure %d", failure)
			require.LessOrEqual(t, d, want*5/4, "failure %d", failure)
		}
	}
}

func TestRetryAfterReadsSendgridHeaders(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	m := &sendgridMailer{now: func() time.Time { return now }}
	require.Equal(t, 7*time.Second, m.retryAfter(http.Header{"Retry-After": {"7"}}))
	require.Equal(t, 30*time.Second, m.retryAfter(http.Header{"Retry-After": {now.Add(30 * time.Second).UTC().Format(http.TimeFormat)}}))
	require.Equal(t, 12*time.Second, m.retryAfter(http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(now.Unix()+12, 10)}}))
	require.Zero(t, m.retryAfter(http.Header{}))
}

func TestDeliveryHonoursRateLimitReset(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reset := time.Now().Add(2 * time.Second)
	b.sendgrid.fail(fakeReply{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"2"}}})
	startWorkers(t, b.server, 1)

	id := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_Email{Email: "a@example.test"}})

	b.waitForStatus(t, id, statusSent)
	sent := b.sendgrid.sentFor(id)
	require.Len(t, sent, 1)
	require.False(t, sent[0].At.Before(reset.Add(-300*time.Millisecond)), "retried before the rate limit reset")
}

func TestStoppingWorkersFinishTheSendInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sendgrid.mu.Lock()
	b.sendgrid.delay = 500 * time.Millisecond
	b.sendgrid.mu.Unlock()
	workers, err := b.server.newJobs(1)
	require.NoError(t, err)
	require.NoError(t, workers.Start(context.Background()))

	id := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_Email{Email: "a@example.test"}})
	require.Eventually(t, func() bool { return b.email(t, id).Attempts == 1 }, 5*time.Second, 5*time.Millisecond)

	// Stopped mid-send: the send completes and is recorded, instead of being repeated
	// by another replica once the lease runs out.
	require.NoError(t, workers.Stop(context.Background()))
	require.Equal(t, statusSent, b.email(t, id).Status)
	require.Len(t, b.sendgrid.sentFor(id), 1)
}

func TestDeliveryToAUserWithoutAccountFailsAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.server.deliverer.lookupEmail = func(context.Context, uuid.UUID) (string, error) {
		return "", &sendError{permanent: true, msg: "the recipient has no account", reason: "the recipient has no account"}
	}
	startWorkers(t, b.server, 1)
	userID := uuid.New()

	id := b.send(t, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_UserId{UserId: userID.String()},
		Channels:  []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL, notificationv1.Channel_CHANNEL_IN_APP},
	})

	b.waitForStatus(t, id, statusFailed)
	list, err := b.api.user.ListNotifications(b.as(t, userID), &notificationv1.ListNotificationsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetNotifications(), 1)
	var email *notificationv1.Delivery
	for _, d := range list.GetNotifications()[0].GetDeliveries() {
		if d.GetChannel() == notificationv1.Channel_CHANNEL_EMAIL {
			email = d
		}
	}
	require.NotNil(t, email)
	require.Equal(t, notificationv1.DeliveryStatus_DELIVERY_STATUS_FAILED, email.GetStatus())
	require.Equal(t, "the recipient has no account", email.GetStatusReason())
}
