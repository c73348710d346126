package planstest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/internal/plans/planstest"
)

// The lifted copy of the built-in catalogue loads, and every plan in it allows the
// lifted rate and API calls.
func TestLiftedCatalogLoadsWithLimitsOutOfReach(t *testing.T) {
	t.Parallel()
	path, err := planstest.LiftedCatalog("../default.yaml", t.TempDir())
	require.NoError(t, err)
	catalog, err := plans.Load(path)
	require.NoError(t, err)
	require.NotEmpty(t, catalog.Plans())
	for _, p := range catalog.Plans() {
		require.Equal(t, 6_000_000, p.RateLimitPerMinute, p.ID)
		if limit, ok := p.QuotaLimits["api_calls"]; ok {
			require.Equal(t, int64(1_000_000_000_000), limit, p.ID)
		}
	}
}
