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

// The usage service reports a meter's totals on the subscription item of a metered
// price; entitlements name that item, and only while the plan applies.
func TestEntitlementsNameTheItemOfAMeteredPrice(t *testing.T) {
	t.Parallel()
	cat, err := plans.Parse("metered.yaml", []byte(`
meters: [{name: api_calls, display_name: Calls, aggregation: SUM}]
plans:
  - {id: free, display_name: Free, rate_limit_per_minute: 60}
  - id: payg
    display_name: Pay as you go
    rate_limit_per_minute: 600
    price: {lookup_key: payg, amount: 1, currency: usd, interval: month, meter: api_calls}
  - id: flat
    display_name: Flat
    rate_limit_per_minute: 600
    price: {lookup_key: flat, amount: 900, currency: usd, interval: month}
`))
	require.NoError(t, err)
	now := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	b := setup(t, withCatalog(cat), withNow(func() time.Time { return now }))
	start, end := now.Add(-24*time.Hour), now.Add(24*time.Hour)
	get := func(user uuid.UUID) *subscriptionv1.GetEntitlementsResponse {
		resp, err := b.srv.GetEntitlements(context.Background(), &subscriptionv1.GetEntitlementsRequest{UserId: user.String()})
		require.NoError(t, err)
		return resp
	}

	metered := uuid.New()
	row := b.stored(t, metered, "payg", "active", start, end)
	items := get(metered).GetMeteredItems()
	require.Len(t, items, 1)
	require.Equal(t, "api_calls", items[0].GetMeter())
	require.Equal(t, row.StripeItemID, items[0].GetStripeSubscriptionItemId())

	flat := uuid.New()
	b.stored(t, flat, "flat", "active", start, end)
	require.Empty(t, get(flat).GetMeteredItems(), "a flat price reports nothing")

	lapsed := uuid.New()
	b.stored(t, lapsed, "payg", "canceled", start, end)
	require.Empty(t, get(lapsed).GetMeteredItems(), "the free plan applies, which bills nothing")
}
