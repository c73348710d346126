package subscription

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/services/subscription/dbsqlc"
)

// upsertParamsOf returns the parameters that would write row again.
func upsertParamsOf(row dbsqlc.Subscription) dbsqlc.SubscriptionUpsertParams {
	return dbsqlc.SubscriptionUpsertParams{
		ID: row.ID, UserID: row.UserID, StripeSubscriptionID: row.StripeSubscriptionID, StripeCustomerID: row.StripeCustomerID,
		StripeItemID: row.StripeItemID, StripePriceID: row.StripePriceID, PlanID: row.PlanID, Status: row.Status,
		CurrentPeriodStart: row.CurrentPeriodStart, CurrentPeriodEnd: row.CurrentPeriodEnd, CancelAtPeriodEnd: row.CancelAtPeriodEnd,
		CancelTime: row.CancelTime, TrialEndTime: row.TrialEndTime, CreateTime: row.CreateTime, ReadVersion: row.ReadVersion,
	}
}

func TestGetSubscription(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()
	_, err := b.srv.GetSubscription(as(user), &subscriptionv1.GetSubscriptionRequest{})
	require.Equal(t, codes.NotFound, fault.Status(err).Code(), "never subscribed")

	_, err = b.srv.GetSubscription(context.Background(), &subscriptionv1.GetSubscriptionRequest{})
	require.Equal(t, codes.Unauthenticated, fault.Status(err).Code())

	start := time.Now().UTC().Truncate(time.Second)
	row := b.stored(t, user, "pro_monthly", "active", start, start.AddDate(0, 1, 0))
	resp, err := b.srv.GetSubscription(as(user), &subscriptionv1.GetSubscriptionRequest{})
	require.NoError(t, err)
	got := resp.GetSubscription()
	require.Equal(t, row.ID.String(), got.GetId())
	require.Equal(t, user.String(), got.GetUserId())
	require.Equal(t, "pro_monthly", got.GetPlanId())
	require.Equal(t, subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, got.GetStatus())
	require.Equal(t, row.StripeSubscriptionID, got.GetStripeSubscriptionId())
	require.Equal(t, start, got.GetCurrentPeriodStart().AsTime())
	require.Nil(t, got.GetCancelTime())
	require.Equal(t, "Pro", resp.GetPlan().GetDisplayName())
}
