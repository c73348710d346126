package subscription

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/plans"
)

func TestEntitlementsFollowTheStatusRules(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	b := setup(t, withNow(func() time.Time { return now }))
	ctx := context.Background()
	monthStart, monthEnd := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	subStart, subEnd := time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC), time.Date(2025, 4, 10, 8, 0, 0, 0, time.UTC)
	pro, _ := plans.Default().Plan("pro_monthly")
	free := plans.Default().Free()

	get := func(t *testing.T, user uuid.UUID) *subscriptionv1.GetEntitlementsResponse {
		t.Helper()
		resp, err := b.srv.GetEntitlements(ctx, &subscriptionv1.GetEntitlementsRequest{UserId: user.String()})
		require.NoError(t, err)
		return resp
	}

	t.Run("never subscribed: free, calendar month", func(t *testing.T) {
		e := get(t, uuid.New())
		require.Equal(t, "free", e.GetPlanId())
		require.Equal(t, subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_UNSPECIFIED, e.GetStatus())
		require.Equal(t, free.QuotaLimits, e.GetQuotaLimits())
		require.Equal(t, free.RateLimitPerMinute, int(e.GetRateLimitPerMinute()))
		require.Equal(t, free.Features, e.GetFeatures())
		require.Equal(t, free.MaxUploadBytes, e.GetMaxUploadBytes())
		require.Equal(t, monthStart, e.GetPeriodStart().AsTime())
		require.Equal(t, monthEnd, e.GetPeriodEnd().AsTime())
	})

	for _, tc := range []struct {
		status   string
		wantPlan string
		want     subscriptionv1.SubscriptionStatus
	}{
		{"trialing", "pro_monthly", subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_TRIALING},
		{"active", "pro_monthly", subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE},
		{"past_due", "pro_monthly", subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_PAST_DUE},
		{"unpaid", "free", subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_UNPAID},
		{"canceled", "free", subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_CANCELED},
		{"incomplete", "free", subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_INCOMPLETE},
		{"incomplete_expired", "free", subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_INCOMPLETE_EXPIRED},
		{"paused", "free", subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_PAUSED},
	} {
		t.Run(tc.status, func(t *testing.T) {
			user := uuid.New()
			b.stored(t, user, "pro_monthly", tc.status, subStart, subEnd)
			e := get(t, user)
			require.Equal(t, tc.wantPlan, e.GetPlanId())
			require.Equal(t, tc.want, e.GetStatus())
			if tc.wantPlan == "pro_monthly" {
				require.Equal(t, pro.QuotaLimits, e.GetQuotaLimits())
				require.Equal(t, pro.RateLimitPerMinute, int(e.GetRateLimitPerMinute()))
				require.Contains(t, e.GetFeatures(), "custom_domains")
				require.Equal(t, subStart, e.GetPeriodStart().AsTime(), "the subscription's period")
				require.Equal(t, subEnd, e.GetPeriodEnd().AsTime())
			} else {
				require.Equal(t, free.QuotaLimits, e.GetQuotaLimits())
				require.Equal(t, monthStart, e.GetPeriodStart().AsTime(), "the calendar month once the plan lapsed")
			}
		})
	}

	t.Run("a new subscription speaks over an ended one", func(t *testing.T) {
		user := uuid.New()
		b.stored(t, user, "team_monthly", "active", subStart, subEnd)
		b.stored(t, user, "pro_monthly", "canceled", subStart.Add(time.Hour), subEnd)
		require.Equal(t, "team_monthly", get(t, user).GetPlanId())
	})

	t.Run("a plan the catalogue no longer sells: free", func(t *testing.T) {
		user := uuid.New()
		b.stored(t, user, "gold", "active", subStart, subEnd)
		e := get(t, user)
		require.Equal(t, "free", e.GetPlanId())
		require.Equal(t, subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, e.GetStatus())
	})
}

func TestAnOlderReadNeverOverwritesANewerOne(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	user := uuid.New()
	start := time.Now().UTC().Truncate(time.Second)
	older, err := b.srv.store.readVersion(ctx)
	require.NoError(t, err)
	row := b.stored(t, user, "pro_monthly", "active", start, start.AddDate(0, 1, 0))

	p := upsertParamsOf(row)
	p.Status, p.ReadVersion = "canceled", older
	_, applied, err := b.srv.store.putSubscription(ctx, p)
	require.NoError(t, err)
	require.False(t, applied, "a read made before the stored one is stale")
	cur, err := b.srv.store.currentSubscription(ctx, user)
	require.NoError(t, err)
	require.Equal(t, "active", cur.Status)

	newer, err := b.srv.store.readVersion(ctx)
	require.NoError(t, err)
	p.ReadVersion = newer
	got, applied, err := b.srv.store.putSubscription(ctx, p)
	require.NoError(t, err)
	require.True(t, applied)
	require.Equal(t, "canceled", got.Status)
	require.Equal(t, row.ID, got.ID, "the same row, updated")
}
