package subscription

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/internal/stripetest"
)

func syncCatalogue(t *testing.T, amount string) *plans.Catalog {
	t.Helper()
	cat, err := plans.Parse("sync.yaml", []byte(`
plans:
  - {id: free, display_name: Free, rate_limit_per_minute: 60}
  - id: pro
    display_name: Pro
    description: For teams.
    rate_limit_per_minute: 600
    price: {lookup_key: sync_pro, amount: `+amount+`, currency: usd, interval: month}
`))
	require.NoError(t, err)
	return cat
}

// A changed amount makes a new price and moves the lookup key to it, since Stripe's
// prices are immutable; the old price is deactivated.
func TestSyncCatalogMovesTheLookupKey(t *testing.T) {
	t.Parallel()
	fake := stripetest.NewFake(t)
	cfg := Config{StripeSecretKey: "sk_test_sync", StripeAPIBase: fake.URL}
	sync := func(amount string) string {
		cfg.Catalog = syncCatalogue(t, amount)
		var out bytes.Buffer
		require.NoError(t, SyncCatalog(context.Background(), cfg, slog.New(slog.DiscardHandler), &out))
		return out.String()
	}
	out := sync("2000")
	require.Contains(t, out, "product backplane_pro: created")
	require.Len(t, fake.Prices(), 1)
	first := fake.Prices()[0]

	out = sync("2500")
	require.Contains(t, out, "product backplane_pro: unchanged")
	require.Contains(t, out, "the lookup key moved from "+first.ID)
	prices := fake.Prices()
	require.Len(t, prices, 2)
	require.False(t, prices[0].Active, "the old price is inactive")
	require.Empty(t, prices[0].LookupKey)
	require.True(t, prices[1].Active)
	require.Equal(t, "sync_pro", prices[1].LookupKey)
	require.Equal(t, int64(2500), prices[1].UnitAmount)
	require.Equal(t, "backplane_pro", prices[1].Product.ID)

	out = sync("2000")
	require.Contains(t, out, "created", "back to the first amount is a new price")
	require.Len(t, fake.Prices(), 3)
	require.Equal(t, int64(2000), fake.Prices()[2].UnitAmount)
	require.Contains(t, sync("2000"), "unchanged")
	require.Len(t, fake.Prices(), 3)

	require.ErrorIs(t, SyncCatalog(context.Background(), Config{}, slog.New(slog.DiscardHandler), &bytes.Buffer{}), errBillingOff)
}
