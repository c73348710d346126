package subscription

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/stripetest"
)

func planIDs(ps []*subscriptionv1.Plan) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.GetId())
	}
	return out
}

func TestListPlansFromTheCatalogueFile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	resp, err := b.srv.ListPlans(ctx, &subscriptionv1.ListPlansRequest{})
	require.NoError(t, err)
	require.Equal(t, []string{"free", "pro_yearly", "pro_monthly", "team_monthly"}, planIDs(resp.GetPlans()))
	require.Empty(t, resp.GetNextPageToken())

	free, pro := resp.GetPlans()[0], resp.GetPlans()[2]
	require.Zero(t, free.GetPriceAmount())
	require.Equal(t, subscriptionv1.BillingInterval_BILLING_INTERVAL_UNSPECIFIED, free.GetInterval())
	require.GreaterOrEqual(t, free.GetQuotaLimits()["storage_bytes"], int64(1<<30))
	require.Equal(t, int64(2000), pro.GetPriceAmount())
	require.Equal(t, int64(2000), pro.GetMonthlyPriceAmount())
	require.Equal(t, "usd", pro.GetCurrency())
	require.Equal(t, subscriptionv1.BillingInterval_BILLING_INTERVAL_MONTH, pro.GetInterval())
	require.Empty(t, pro.GetStripePriceId(), "no Stripe, no price id")
	require.Equal(t, int32(14), pro.GetTrialPeriodDays())
	require.Equal(t, int32(3000), pro.GetRateLimitPerMinute())
	require.Positive(t, pro.GetMaxUploadBytes())
	require.Contains(t, pro.GetFeatures(), "custom_domains")

	t.Run("paged", func(t *testing.T) {
		first, err := b.srv.ListPlans(ctx, &subscriptionv1.ListPlansRequest{PageSize: 3})
		require.NoError(t, err)
		require.Equal(t, []string{"free", "pro_yearly", "pro_monthly"}, planIDs(first.GetPlans()))
		require.NotEmpty(t, first.GetNextPageToken())
		next, err := b.srv.ListPlans(ctx, &subscriptionv1.ListPlansRequest{PageSize: 3, PageToken: first.GetNextPageToken()})
		require.NoError(t, err)
		require.Equal(t, []string{"team_monthly"}, planIDs(next.GetPlans()))
		require.Empty(t, next.GetNextPageToken())
		_, err = b.srv.ListPlans(ctx, &subscriptionv1.ListPlansRequest{PageToken: "forged"})
		require.Equal(t, codes.InvalidArgument, fault.Status(err).Code())
	})
}

func TestListPlansShowsStripesPricesCached(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	// Stripe charges more than the file says: Stripe is the record for money.
	pro := b.stripe.AddPrice("backplane_pro_monthly", 2500, "usd", "month")
	b.stripe.AddPrice("backplane_team_monthly", 9900, "usd", "month")
	ctx := context.Background()

	resp, err := b.srv.ListPlans(ctx, &subscriptionv1.ListPlansRequest{})
	require.NoError(t, err)
	got := resp.GetPlans()[2]
	require.Equal(t, "pro_monthly", got.GetId())
	require.Equal(t, pro.ID, got.GetStripePriceId())
	require.Equal(t, int64(2500), got.GetPriceAmount())
	yearly := resp.GetPlans()[1]
	require.Empty(t, yearly.GetStripePriceId(), "not synced to Stripe yet: the file's amount")
	require.Equal(t, int64(20000), yearly.GetPriceAmount())

	_, err = b.srv.ListPlans(ctx, &subscriptionv1.ListPlansRequest{})
	require.NoError(t, err)
	require.Equal(t, 1, b.stripe.Count(http.MethodGet, "/v1/prices"), "served from the cache")
}

func TestListPlansWhileStripeIsDown(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.stripe.AddPrice("backplane_pro_monthly", 2500, "usd", "month")
	b.stripe.FailNext(http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusServiceUnavailable)
	resp, err := b.srv.ListPlans(context.Background(), &subscriptionv1.ListPlansRequest{})
	require.NoError(t, err, "a pricing page still renders")
	require.Equal(t, int64(2000), resp.GetPlans()[2].GetPriceAmount(), "the file's amount")
	require.Equal(t, 3, b.stripe.Count(http.MethodGet, "/v1/prices"), "three attempts")

	resp, err = b.srv.ListPlans(context.Background(), &subscriptionv1.ListPlansRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(2500), resp.GetPlans()[2].GetPriceAmount(), "Stripe's, once it answers")
}

// The prices request is one Stripe's spec accepts, at stripe-go's API version.
func TestPricesRequestAgainstStripeMock(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripeAt(stripetest.Mock(t)))
	prices, err := b.srv.prices.read(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, prices)
}

func TestStripeErrorsAreClassified(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.stripe.FailNext(http.StatusInternalServerError, http.StatusTooManyRequests, http.StatusBadGateway)
	_, err := b.srv.prices.read(context.Background())
	st := fault.Status(err)
	require.Equal(t, codes.Unavailable, st.Code())
	require.Equal(t, "Stripe is unreachable; retry shortly", st.Message())
	require.Equal(t, codes.Unavailable, status.Code(fault.Status(stripeFault(err, "x")).Err()))
}
