package usage

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
)

// Two replicas see one user's total cross 80 % and then 100 % of the limit, from many
// concurrent calls: each threshold raises one alert, and one notification goes out for
// each.
func TestAlertsAreSentOncePerThresholdAndPeriod(t *testing.T) {
	t.Parallel()
	b := setup(t)
	second := b.newServer(t, wiring{})
	secondAPI := b.serve(t, second)
	startJobs(t, b.srv)
	startJobs(t, second)
	user := uuid.New()

	b.record(t, user, "api_calls", 79, "warm-up")
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			api := []usagev1.UsageServiceClient{b.api.internal, secondAPI.internal}[i%2]
			if i%3 == 0 {
				_, err := api.IngestUsage(t.Context(), &usagev1.IngestUsageRequest{Events: []*usagev1.UserUsage{{
					UserId: user.String(), Usage: &usagev1.RecordUsageRequest{Meter: "api_calls", Quantity: 1, IdempotencyKey: fmt.Sprint("edge-", i)},
				}}})
				require.NoError(t, err)
				return
			}
			_, err := api.ConsumeQuota(t.Context(), consume(user, "api_calls", 1, fmt.Sprint("work-", i)))
			require.NoError(t, err)
		})
	}
	wg.Wait()
	// 79 + 10 recorded whatever the limit; ConsumeQuota's 20 counted while they fitted.
	total := b.summary(t, user)["api_calls"].GetTotal()
	require.GreaterOrEqual(t, total, int64(100))
	require.LessOrEqual(t, total, int64(109))

	require.Eventually(t, func() bool { return len(b.notifier.sentTo(user)) == 2 }, 20*time.Second, 50*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // long enough for a second notification, were one coming
	sent := b.notifier.sentTo(user)
	require.Len(t, sent, 2)
	byKey := map[string]*notificationv1.SendRequest{}
	for _, s := range sent {
		byKey[s.GetIdempotencyKey()] = s
		require.Equal(t, notificationv1.Category_CATEGORY_USAGE, s.GetCategory())
		require.Equal(t, "message", s.GetTemplate())
	}
	start := calendarMonth(time.Now()).start.Unix()
	warn := byKey[fmt.Sprintf("usage-alert:%s:api_calls:%d:80", user, start)]
	require.NotNil(t, warn, "the 80 %% alert")
	require.Contains(t, warn.GetData()["title"], "80% of your API calls")
	full := byKey[fmt.Sprintf("usage-alert:%s:api_calls:%d:100", user, start)]
	require.NotNil(t, full, "the 100 %% alert")
	require.Contains(t, full.GetData()["title"], "all of your API calls")
	require.Eventually(t, func() bool {
		return b.count(t, "SELECT count(*) FROM alerts WHERE user_id = $1 AND sent_time IS NOT NULL", user) == 2
	}, 5*time.Second, 20*time.Millisecond)

	t.Run("below 80 % nobody is alerted", func(t *testing.T) {
		other := uuid.New()
		b.record(t, other, "api_calls", 50, "half")
		b.record(t, other, "emails_sent", 1, "one")
		time.Sleep(300 * time.Millisecond)
		require.Empty(t, b.notifier.sentTo(other), "50 %% of api_calls and 10 %% of emails alert nobody")
	})
}

// An alert whose job was never inserted (the process stopped first) is sent by the
// sweep; a send that fails is retried.
func TestTheSweepSendsAlertsLeftBehind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()
	start := calendarMonth(time.Now())
	_, err := b.pool.Exec(t.Context(), `INSERT INTO alerts (user_id, meter, period_start, threshold, period_end, quota_limit, total, create_time)
		VALUES ($1, 'emails_sent', $2, 100, $3, 10, 10, now() - interval '5 minutes')`, user, start.start, start.end)
	require.NoError(t, err)

	n, err := b.srv.sweepAlerts(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	b.notifier.mu.Lock()
	b.notifier.fail = 1
	b.notifier.mu.Unlock()
	startJobs(t, b.srv)
	require.Eventually(t, func() bool { return len(b.notifier.sentTo(user)) == 1 }, 20*time.Second, 50*time.Millisecond, "sent on the retry")
	require.Eventually(t, func() bool {
		return b.count(t, "SELECT count(*) FROM alerts WHERE user_id = $1 AND sent_time IS NOT NULL", user) == 1
	}, 5*time.Second, 20*time.Millisecond)
	n, err = b.srv.sweepAlerts(t.Context())
	require.NoError(t, err)
	require.Zero(t, n, "nothing left behind")
}
