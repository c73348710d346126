package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services/subscription"
)

// startPlans runs the real subscription service with catalog on pool's database and
// gives deps (the asset service's) a connection to it; it returns the subscription
// schema's pool, where a test puts users on plans.
func startPlans(t testing.TB, pool *pgxpool.Pool, rdb redis.UniversalClient, catalog string, interceptor *authn.Interceptor, tokens *authn.HMACServiceTokens, deps *service.Deps) *pgxpool.Pool {
	t.Helper()
	subPool, err := database.Open(t.Context(), pool.Config().ConnString(), database.WithSchema("subscription"))
	require.NoError(t, err)
	t.Cleanup(subPool.Close)
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(file, []byte(catalog), 0o600))
	start, err := subscription.Definition().LoadConfig(config.NewEnv(func(k string) string {
		if k == plans.FileVariable {
			return file
		}
		return ""
	}))
	require.NoError(t, err)
	inst, err := start(t.Context(), service.Deps{
		Logger: slog.New(slog.DiscardHandler), DB: subPool, Redis: rdb,
		PublicURL: "https://app.backplane.test", Issuer: assetTestIssuer,
	})
	require.NoError(t, err)
	if inst.Stop != nil {
		t.Cleanup(func() { _ = inst.Stop(context.Background()) })
	}
	srv := grpctest.Start(t, inst.Register, grpctest.WithAuthenticator(interceptor))
	deps.Peers = map[string]*grpc.ClientConn{
		"subscription": srv.Dial(t, grpc.WithPerRPCCredentials(tokens.PerRPCCredentials("asset"))),
	}
	return subPool
}

// subscribe puts user on planID, as the subscription service stores what it read from
// Stripe.
func (h *assetHarness) subscribe(t testing.TB, user uuid.UUID, planID string) {
	t.Helper()
	now := time.Now()
	_, err := h.subPool.Exec(t.Context(), `
		INSERT INTO subscriptions (id, user_id, stripe_subscription_id, stripe_customer_id, stripe_item_id,
			stripe_price_id, plan_id, status, current_period_start, current_period_end, create_time, read_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $8, nextval('stripe_reads'))`,
		uuid.New(), user, "sub_"+rand.Text(), "cus_"+rand.Text(), "si_"+rand.Text(), "price_"+rand.Text(), planID,
		now.Add(-time.Hour), now.Add(30*24*time.Hour))
	require.NoError(t, err)
}

// uploadPlans lowers the largest file to 64 KiB on the free plan and raises it to 2 MiB
// on the paid one, either side of the harness's BACKPLANE_ASSET_MAX_BYTES (1 MiB).
const uploadPlans = `
meters:
  - {name: api_calls, display_name: API calls, unit: calls, aggregation: SUM}
  - {name: storage_bytes, display_name: Storage, unit: bytes, aggregation: MAX}
plans:
  - id: free
    display_name: Free
    rate_limit_per_minute: 600
    max_upload_bytes: 65536
  - id: big
    display_name: Big
    price: {lookup_key: big, amount: 100, currency: usd, interval: month}
    rate_limit_per_minute: 600
    max_upload_bytes: 2097152
`

// The REST door holds uploads to the caller's plan's max_upload_bytes, lower or higher
// than BACKPLANE_ASSET_MAX_BYTES: 413 once past it, on PUT and on a browser's form.
func TestRESTUploadsAreHeldToThePlan(t *testing.T) {
	t.Parallel()
	h := assetSetup(t, 1<<20, uploadPlans)
	free, paid := uuid.New(), uuid.New()
	h.subscribe(t, paid, "big")
	freeToken, paidToken := h.token(t, free), h.token(t, paid)

	t.Run("free plan: a declaration past 64 KiB is 413", func(t *testing.T) {
		body := fmt.Sprintf(`{"filename":"a.bin","contentType":"application/octet-stream","sizeBytes":"%d"}`, 64<<10+1)
		resp, b := h.call(t, freeToken, "POST", "/v1/assets", bytes.NewReader([]byte(body)), http.Header{"Content-Type": {"application/json"}})
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
	})
	t.Run("free plan: a form past 64 KiB is 413", func(t *testing.T) {
		body, ct := form(t, nil, "big.bin", "application/octet-stream", make([]byte, 64<<10+1))
		resp, b := h.call(t, freeToken, "POST", "/v1/assets:upload", body, http.Header{"Content-Type": {ct}})
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
		require.Equal(t, "RESOURCE_EXHAUSTED", codeName(decode(t, b)["code"]))
	})
	t.Run("paid plan: past BACKPLANE_ASSET_MAX_BYTES, within the plan's, is stored", func(t *testing.T) {
		data := pngFile(1<<20 + 100_000)
		id := h.create(t, paidToken, "big.png", "image/png", len(data))
		resp, b := h.call(t, paidToken, "PUT", "/v1/assets/"+id+"/content", bytes.NewReader(data), http.Header{"Content-Type": {"image/png"}})
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	})
	t.Run("paid plan: a form past its 2 MiB is 413", func(t *testing.T) {
		body, ct := form(t, nil, "big.bin", "application/octet-stream", make([]byte, 2<<20+1))
		resp, b := h.call(t, paidToken, "POST", "/v1/assets:upload", body, http.Header{"Content-Type": {ct}})
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
	})
}
