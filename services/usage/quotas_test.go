package usage

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
)

func consume(user uuid.UUID, meter string, quantity int64, key string) *usagev1.ConsumeQuotaRequest {
	return &usagev1.ConsumeQuotaRequest{UserId: user.String(), Meter: meter, Quantity: quantity, IdempotencyKey: key}
}

func TestConsumeQuotaCountsOnlyWhatFits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()
	api := b.api.internal

	t.Run("within the limit", func(t *testing.T) {
		resp, err := api.ConsumeQuota(t.Context(), consume(user, "api_calls", 60, "a"))
		require.NoError(t, err)
		require.True(t, resp.GetAllowed())
		require.Equal(t, int64(100), resp.GetLimit())
		require.Equal(t, int64(40), resp.GetRemaining())
		require.Equal(t, calendarMonth(time.Now()).end, resp.GetResetTime().AsTime())
		require.False(t, resp.GetDuplicate())
	})
	t.Run("past the limit nothing is counted", func(t *testing.T) {
		resp, err := api.ConsumeQuota(t.Context(), consume(user, "api_calls", 41, "b"))
		require.NoError(t, err)
		require.False(t, resp.GetAllowed())
		require.Equal(t, int64(40), resp.GetRemaining())
		require.Equal(t, int64(60), b.summary(t, user)["api_calls"].GetTotal())
	})
	t.Run("what still fits is counted", func(t *testing.T) {
		resp, err := api.ConsumeQuota(t.Context(), consume(user, "api_calls", 40, "c"))
		require.NoError(t, err)
		require.True(t, resp.GetAllowed())
		require.Zero(t, resp.GetRemaining())
	})
	t.Run("a retry gets the first answer and counts nothing", func(t *testing.T) {
		for key, allowed := range map[string]bool{"a": true, "b": false} {
			q := map[string]int64{"a": 60, "b": 41}[key]
			resp, err := api.ConsumeQuota(t.Context(), consume(user, "api_calls", q, key))
			require.NoError(t, err)
			require.True(t, resp.GetDuplicate(), key)
			require.Equal(t, allowed, resp.GetAllowed(), key)
			require.Equal(t, map[string]int64{"a": 40, "b": 40}[key], resp.GetRemaining(), "%s: as answered then", key)
		}
		require.Equal(t, int64(100), b.summary(t, user)["api_calls"].GetTotal())
		require.Equal(t, int64(2), b.count(t, "SELECT count(*) FROM events WHERE user_id = $1", user), "an event per unit counted")
	})
	t.Run("the same key for other work is refused", func(t *testing.T) {
		_, err := api.ConsumeQuota(t.Context(), consume(user, "api_calls", 61, "a"))
		require.Equal(t, codes.AlreadyExists, status.Code(err))
		b.record(t, user, "emails_sent", 1, "mail-1")
		_, err = api.ConsumeQuota(t.Context(), consume(user, "emails_sent", 1, "mail-1"))
		require.Equal(t, codes.AlreadyExists, status.Code(err), "a RecordUsage key")
	})
	t.Run("an unlimited meter always fits", func(t *testing.T) {
		resp, err := api.ConsumeQuota(t.Context(), consume(user, "seats", 1_000_000, "seats"))
		require.NoError(t, err)
		require.True(t, resp.GetAllowed())
		require.Nil(t, resp.Limit)
		require.Nil(t, resp.Remaining)
	})
	t.Run("a MAX meter judges the new level", func(t *testing.T) {
		for _, tc := range []struct {
			level   int64
			allowed bool
			total   int64
		}{{800, true, 800}, {300, true, 800}, {1001, false, 800}, {1000, true, 1000}} {
			resp, err := api.ConsumeQuota(t.Context(), consume(user, "storage_bytes", tc.level, fmt.Sprint("level-", tc.level)))
			require.NoError(t, err)
			require.Equal(t, tc.allowed, resp.GetAllowed(), tc.level)
			require.Equal(t, tc.total, b.summary(t, user)["storage_bytes"].GetTotal(), tc.level)
		}
	})
	t.Run("a COUNT meter counts calls", func(t *testing.T) {
		for i := range 12 {
			resp, err := api.ConsumeQuota(t.Context(), consume(user, "emails_sent", 50, fmt.Sprint("mail-c", i)))
			require.NoError(t, err)
			require.Equal(t, i < 9, resp.GetAllowed(), i) // one was recorded above; the limit is 10
		}
	})
	t.Run("for services only", func(t *testing.T) {
		_, err := b.api.user.ConsumeQuota(b.as(t, user), consume(user, "api_calls", 1, "z"))
		require.Equal(t, codes.PermissionDenied, status.Code(err))
		_, err = api.ConsumeQuota(t.Context(), consume(user, "bananas", 1, "z"))
		require.Equal(t, codes.InvalidArgument, status.Code(err))
	})
}

func TestCheckQuotaCountsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()
	b.record(t, user, "api_calls", 70, "a")
	for _, tc := range []struct {
		meter    string
		quantity int64
		allowed  bool
	}{
		{"api_calls", 30, true}, {"api_calls", 31, false}, {"api_calls", 0, true},
		{"storage_bytes", 1000, true}, {"storage_bytes", 1001, false},
		{"seats", 1_000_000_000_000, true},
	} {
		resp, err := b.api.internal.CheckQuota(t.Context(), &usagev1.CheckQuotaRequest{UserId: user.String(), Meter: tc.meter, Quantity: tc.quantity})
		require.NoError(t, err)
		require.Equal(t, tc.allowed, resp.GetAllowed(), "%s %d", tc.meter, tc.quantity)
	}
	resp, err := b.api.internal.CheckQuota(t.Context(), &usagev1.CheckQuotaRequest{UserId: user.String(), Meter: "api_calls"})
	require.NoError(t, err)
	require.Equal(t, int64(30), resp.GetRemaining())
	require.Equal(t, int64(70), b.summary(t, user)["api_calls"].GetTotal())
	_, err = b.api.user.CheckQuota(b.as(t, user), &usagev1.CheckQuotaRequest{UserId: user.String(), Meter: "api_calls"})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
}

// Two replicas of the service on one database, and fifty callers spending one user's
// quota at once through both: the total never passes the limit, and every unit allowed
// is counted exactly once.
func TestConsumeQuotaHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	second := b.serve(t, b.newServer(t, wiring{}))
	replicas := []usagev1.UsageServiceClient{b.api.internal, second.internal}
	user := uuid.New()
	const callers, each, perCall = 50, 3, 7 // 1,050 asked of a limit of 1,000 (pro)
	now := time.Now().UTC()
	b.subscribe(t, user, "pro", now.Add(-time.Hour), now.Add(24*time.Hour))

	var (
		allowed atomic.Int64
		wg      sync.WaitGroup
		errs    = make(chan error, callers*each)
	)
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				resp, err := replicas[(c+i)%2].ConsumeQuota(t.Context(), consume(user, "api_calls", perCall, fmt.Sprintf("c%d-%d", c, i)))
				if err != nil {
					errs <- err
					return
				}
				if resp.GetAllowed() {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	total := b.summary(t, user)["api_calls"].GetTotal()
	require.LessOrEqual(t, total, int64(1000))
	require.Equal(t, allowed.Load()*perCall, total, "every unit allowed, counted once")
	require.Equal(t, int64(1000/perCall), allowed.Load(), "refused only once the quota was spent")
	require.Equal(t, allowed.Load(), b.count(t, "SELECT count(*) FROM events WHERE user_id = $1", user))
}

// Retries of one piece of work, arriving at both replicas at once, count once and all
// get one answer.
func TestDuplicateKeysAcrossReplicasCountOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	second := b.serve(t, b.newServer(t, wiring{}))
	replicas := []usagev1.UsageServiceClient{b.api.internal, second.internal}
	users := []usagev1.UsageServiceClient{b.api.user, second.user}
	user := uuid.New()
	const retries = 20

	t.Run("ConsumeQuota", func(t *testing.T) {
		answers := make([]*usagev1.ConsumeQuotaResponse, retries)
		var wg sync.WaitGroup
		for i := range retries {
			wg.Go(func() {
				resp, err := replicas[i%2].ConsumeQuota(t.Context(), consume(user, "api_calls", 9, "once"))
				require.NoError(t, err)
				answers[i] = resp
			})
		}
		wg.Wait()
		firsts := 0
		for _, a := range answers {
			require.True(t, a.GetAllowed())
			require.Equal(t, int64(91), a.GetRemaining())
			if !a.GetDuplicate() {
				firsts++
			}
		}
		require.Equal(t, 1, firsts, "one call decided, the others got its answer")
		require.Equal(t, int64(9), b.summary(t, user)["api_calls"].GetTotal())
	})
	t.Run("RecordUsage and batches", func(t *testing.T) {
		ids := make([]string, retries)
		var wg sync.WaitGroup
		for i := range retries {
			wg.Go(func() {
				if i%3 == 0 {
					resp, err := users[i%2].RecordUsageBatch(b.as(t, user), &usagev1.RecordUsageBatchRequest{Events: []*usagev1.RecordUsageRequest{
						{Meter: "emails_sent", Quantity: 1, IdempotencyKey: "mail"},
						{Meter: "api_calls", Quantity: 5, IdempotencyKey: fmt.Sprint("batch-", i)},
					}})
					require.NoError(t, err)
					ids[i] = resp.GetResults()[0].GetEventId()
					return
				}
				resp, err := users[i%2].RecordUsage(b.as(t, user), &usagev1.RecordUsageRequest{Meter: "emails_sent", Quantity: 1, IdempotencyKey: "mail"})
				require.NoError(t, err)
				ids[i] = resp.GetEvent().GetId()
			})
		}
		wg.Wait()
		for _, id := range ids {
			require.Equal(t, ids[0], id, "every retry names the one event")
		}
		m := b.summary(t, user)
		require.Equal(t, int64(1), m["emails_sent"].GetTotal())
		require.Equal(t, int64(9+5*7), m["api_calls"].GetTotal(), "the batches' other events counted")
	})
}

// The clock crosses a period's end mid-test: usage before counts in the old period,
// usage after in a new one that starts at zero, with no job run in between.
func TestAPeriodBoundarySplitsTheTotals(t *testing.T) {
	t.Parallel()
	c := &clock{}
	b := setup(t, withClock(c))
	newYear := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	c.Set(newYear.Add(-2 * time.Second))
	require.NoError(t, b.srv.upkeep(t.Context()), "the partitions of the months around the clock")

	t.Run("free plan: calendar months", func(t *testing.T) {
		user := uuid.New()
		b.record(t, user, "api_calls", 60, "dec")
		resp, err := b.api.internal.ConsumeQuota(t.Context(), consume(user, "api_calls", 40, "dec-q"))
		require.NoError(t, err)
		require.True(t, resp.GetAllowed())
		require.Equal(t, newYear, resp.GetResetTime().AsTime())
		resp, err = b.api.internal.ConsumeQuota(t.Context(), consume(user, "api_calls", 1, "dec-full"))
		require.NoError(t, err)
		require.False(t, resp.GetAllowed(), "December is spent")

		c.Set(newYear)
		resp, err = b.api.internal.ConsumeQuota(t.Context(), consume(user, "api_calls", 1, "jan-q"))
		require.NoError(t, err)
		require.True(t, resp.GetAllowed(), "January starts at zero")
		require.Equal(t, int64(99), resp.GetRemaining())
		b.record(t, user, "api_calls", 5, "jan")

		sum, err := b.api.user.GetUsageSummary(b.as(t, user), &usagev1.GetUsageSummaryRequest{Meter: "api_calls"})
		require.NoError(t, err)
		require.Equal(t, newYear, sum.GetPeriodStart().AsTime())
		require.Equal(t, int64(6), sum.GetMeters()[0].GetTotal())
		require.Equal(t, "free", sum.GetPlanId())
		require.Equal(t, int64(100), b.count(t, "SELECT total FROM totals WHERE user_id = $1 AND period_start = $2", user, newYear.AddDate(0, -1, 0)))
		require.Equal(t, int64(6), b.count(t, "SELECT total FROM totals WHERE user_id = $1 AND period_start = $2", user, newYear))
		require.Equal(t, int64(2), b.count(t, "SELECT count(*) FROM alerts WHERE user_id = $1 AND period_start = $2", user, newYear.AddDate(0, -1, 0)),
			"December passed 80 % and 100 %")
		b.record(t, user, "api_calls", 80, "jan-more")
		require.Equal(t, int64(1), b.count(t, "SELECT count(*) FROM alerts WHERE user_id = $1 AND period_start = $2 AND threshold = 80", user, newYear),
			"each period alerts afresh")
		c.Set(newYear.Add(-2 * time.Second))
	})
	t.Run("subscription: its periods, beyond the one last heard of", func(t *testing.T) {
		user := uuid.New()
		start, end := newYear.AddDate(0, -1, 0).Add(10*24*time.Hour), newYear.Add(10*24*time.Hour) // 11 Dec – 11 Jan
		b.subscribe(t, user, "pro", start, end)
		c.Set(end.Add(-time.Second))
		b.record(t, user, "api_calls", 700, "before")
		c.Set(end)
		// Stripe's renewal has not reached the subscription service: the next period
		// follows on the same anchor.
		b.record(t, user, "api_calls", 30, "after")
		sum, err := b.api.user.GetUsageSummary(b.as(t, user), &usagev1.GetUsageSummaryRequest{Meter: "api_calls"})
		require.NoError(t, err)
		require.Equal(t, "pro", sum.GetPlanId())
		require.Equal(t, end, sum.GetPeriodStart().AsTime())
		require.Equal(t, end.AddDate(0, 1, 0), sum.GetPeriodEnd().AsTime())
		require.Equal(t, int64(30), sum.GetMeters()[0].GetTotal())
		require.Equal(t, int64(700), b.count(t, "SELECT total FROM totals WHERE user_id = $1 AND period_start = $2", user, start))
	})
}

// A change of plan is felt at once: the subscription service's announcement drops the
// cached entitlements.
func TestAPlanChangeIsFeltAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()
	b.record(t, user, "api_calls", 100, "a")
	resp, err := b.api.internal.CheckQuota(t.Context(), &usagev1.CheckQuotaRequest{UserId: user.String(), Meter: "api_calls", Quantity: 1})
	require.NoError(t, err)
	require.False(t, resp.GetAllowed(), "the free plan's 100 are spent")

	now := time.Now().UTC()
	b.subscribe(t, user, "pro", now.Add(-time.Hour), now.Add(24*time.Hour))
	require.Eventually(t, func() bool {
		resp, err := b.api.internal.CheckQuota(t.Context(), &usagev1.CheckQuotaRequest{UserId: user.String(), Meter: "api_calls", Quantity: 1})
		return err == nil && resp.GetAllowed() && proto.Equal(resp, &usagev1.CheckQuotaResponse{
			Allowed: true, Limit: new(int64(1000)), Remaining: new(int64(1000)), ResetTime: resp.GetResetTime(),
		})
	}, 5*time.Second, 20*time.Millisecond, "the new plan and its new period")
}
