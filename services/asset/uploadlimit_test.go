package asset

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/grpctest/authntest"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services/subscription"
)

// planCatalog lowers the largest file to 64 KiB on the free plan and raises it to
// 2 MiB on the paid one, either side of the tests' BACKPLANE_ASSET_MAX_BYTES (1 MiB).
const planCatalog = `
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

const (
	freeUploadLimit = 64 << 10
	bigUploadLimit  = 2 << 20
)

// plansBundle is the real subscription service beside the asset service, on the same
// database, so that a test can put a user on a plan.
type plansBundle struct{ subPool *pgxpool.Pool }

// withPlans runs the real subscription service from its Definition with planCatalog,
// and gives the asset service a connection to it.
func withPlans(t *testing.T, pb *plansBundle) option {
	t.Helper()
	pool := dbtest.NewPool(t, "asset", migrations(),
		dbtest.WithStep(fmt.Sprintf("river migration %d", jobs.SchemaVersion()), func(ctx context.Context, pool *pgxpool.Pool) error {
			_, err := jobs.Migrate(ctx, pool, "asset", nil)
			return err
		}),
		dbtest.WithMigrations("subscription", subscription.Definition().Migrations))
	var err error
	pb.subPool, err = database.Open(t.Context(), pool.Config().ConnString(), database.WithSchema("subscription"))
	require.NoError(t, err)
	t.Cleanup(pb.subPool.Close)
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(file, []byte(planCatalog), 0o600))
	return func(_ *Config, deps *service.Deps) {
		a := authntest.New(t, authntest.Config{Redis: deps.Redis})
		start, err := subscription.Definition().LoadConfig(config.NewEnv(func(k string) string {
			if k == plans.FileVariable {
				return file
			}
			return ""
		}))
		require.NoError(t, err)
		inst, err := start(t.Context(), service.Deps{
			Logger: slog.New(slog.DiscardHandler), DB: pb.subPool, Redis: deps.Redis,
			PublicURL: "https://app.backplane.test", Issuer: authntest.Issuer,
		})
		require.NoError(t, err)
		if inst.Stop != nil {
			t.Cleanup(func() { _ = inst.Stop(context.Background()) })
		}
		srv := grpctest.Start(t, inst.Register, a.Option())
		deps.DB = pool
		deps.Peers = map[string]*grpc.ClientConn{
			"subscription": srv.Dial(t, grpc.WithPerRPCCredentials(a.Services.PerRPCCredentials("asset"))),
		}
	}
}

// subscribe puts user on planID, as the subscription service stores what it read from
// Stripe.
func (pb *plansBundle) subscribe(t testing.TB, user uuid.UUID, planID string) {
	t.Helper()
	now := time.Now()
	_, err := pb.subPool.Exec(t.Context(), `
		INSERT INTO subscriptions (id, user_id, stripe_subscription_id, stripe_customer_id, stripe_item_id,
			stripe_price_id, plan_id, status, current_period_start, current_period_end, create_time, read_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $8, nextval('stripe_reads'))`,
		uuid.New(), user, "sub_"+rand.Text(), "cus_"+rand.Text(), "si_"+rand.Text(), "price_"+rand.Text(), planID,
		now.Add(-time.Hour), now.Add(30*24*time.Hour))
	require.NoError(t, err)
}

// maxBytesOf is the limit a too-large refusal names in its ErrorInfo.
func maxBytesOf(t *testing.T, err error) string {
	t.Helper()
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == ReasonTooLarge {
			return info.GetMetadata()["max_bytes"]
		}
	}
	t.Fatalf("no %s ErrorInfo in %v", ReasonTooLarge, err)
	return ""
}

// A plan's max_upload_bytes replaces BACKPLANE_ASSET_MAX_BYTES for its users, lower or
// higher: a declaration past it is refused at once, and a stream that passes it is
// ended there, by the gRPC door as by UploadAssetContent.
func TestThePlanSetsTheLargestFile(t *testing.T) {
	t.Parallel()
	var pb plansBundle
	b := setup(t, fileBucket(t), withPlans(t, &pb))
	require.Equal(t, int64(1<<20), b.cfg.MaxBytes, "the plans' limits lie either side of the service's")
	free, paid := uuid.New(), uuid.New()
	pb.subscribe(t, paid, "big")

	t.Run("the free plan lowers it: a declaration past it is refused", func(t *testing.T) {
		_, err := b.api.CreateAsset(b.as(t, free), &assetv1.CreateAssetRequest{Filename: "a.bin", ContentType: "application/octet-stream", SizeBytes: freeUploadLimit + 1})
		require.Equal(t, fmt.Sprint(freeUploadLimit), maxBytesOf(t, err))
		_, err = b.api.CreateAsset(b.as(t, free), &assetv1.CreateAssetRequest{Filename: "a.bin", ContentType: "application/octet-stream", SizeBytes: freeUploadLimit})
		require.NoError(t, err)
	})
	t.Run("the free plan lowers it: a stream of unknown size ends once past it", func(t *testing.T) {
		stream, err := b.api.UploadAsset(b.as(t, free))
		require.NoError(t, err)
		require.NoError(t, stream.Send(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Metadata{Metadata: &assetv1.UploadAssetMetadata{Filename: "big.bin", ContentType: "application/octet-stream"}}}))
		chunk := make([]byte, 16<<10)
		var sent int64
		const endless = 1 << 30
		for sent < endless {
			if stream.Send(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Chunk{Chunk: chunk}}) != nil {
				break
			}
			sent += int64(len(chunk))
		}
		_, err = stream.CloseAndRecv()
		require.Equal(t, fmt.Sprint(freeUploadLimit), maxBytesOf(t, err))
		require.Less(t, sent, int64(endless), "the server ended the stream while the client was still sending")
	})
	t.Run("a paid plan raises it past BACKPLANE_ASSET_MAX_BYTES", func(t *testing.T) {
		data := pngBytes(int(b.cfg.MaxBytes) + 100_000)
		resp, err := b.upload(b.as(t, paid), &assetv1.UploadAssetMetadata{Filename: "big.png", ContentType: "image/png"}, data, 256<<10)
		require.NoError(t, err)
		require.Equal(t, int64(len(data)), resp.GetAsset().GetSizeBytes())
		_, err = b.upload(b.as(t, paid), &assetv1.UploadAssetMetadata{Filename: "big.png", ContentType: "image/png"}, pngBytes(bigUploadLimit), 256<<10)
		require.Equal(t, fmt.Sprint(bigUploadLimit), maxBytesOf(t, err), "the paid plan's own limit still holds")
	})
	t.Run("the bytes of a declared asset are weighed against the plan's limit too", func(t *testing.T) {
		data := pngBytes(int(b.cfg.MaxBytes) + 200_000)
		created, err := b.api.CreateAsset(b.as(t, paid), &assetv1.CreateAssetRequest{Filename: "a.png", ContentType: "image/png", SizeBytes: int64(len(data))})
		require.NoError(t, err)
		resp, err := b.uploadTo(b.as(t, paid), created.GetAsset().GetId(), data, 256<<10)
		require.NoError(t, err, "past BACKPLANE_ASSET_MAX_BYTES, within the plan's")
		require.Equal(t, assetv1.AssetState_ASSET_STATE_READY, resp.GetAsset().GetState())
	})
}
