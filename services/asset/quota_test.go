package asset

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/grpctest/authntest"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services/subscription"
	"github.com/backplane/backplane/services/usage"
)

// quotaCatalog gives the free plan 10,000 bytes of storage.
const quotaCatalog = `
meters:
  - {name: api_calls, display_name: API calls, unit: calls, aggregation: SUM}
  - {name: storage_bytes, display_name: Storage, unit: bytes, aggregation: MAX}
  - {name: emails_sent, display_name: Emails sent, unit: emails, aggregation: COUNT}
plans:
  - id: free
    display_name: Free
    rate_limit_per_minute: 600
    quota_limits: {api_calls: 100, storage_bytes: 10000, emails_sent: 10}
`

// quotaLimit is the free plan's storage_bytes in quotaCatalog.
const quotaLimit = 10000

// withUsage runs the real usage service (and the subscription service it asks for each
// user's plan) from their Definitions on the test's database, with the quota catalogue,
// and gives the asset service a connection to it.
func withUsage(t *testing.T) option {
	t.Helper()
	pool := dbtest.NewPool(t, "asset", migrations(),
		dbtest.WithMigrations("subscription", subscription.Definition().Migrations),
		dbtest.WithMigrations("usage", usage.Definition().Migrations),
		dbtest.WithStep(fmt.Sprintf("usage river migration %d", jobs.SchemaVersion()), func(ctx context.Context, pool *pgxpool.Pool) error {
			_, err := jobs.Migrate(ctx, pool, "usage", nil)
			return err
		}))
	schemaPool := func(schema string) *pgxpool.Pool {
		p, err := database.Open(t.Context(), pool.Config().ConnString(), database.WithSchema(schema))
		require.NoError(t, err)
		t.Cleanup(p.Close)
		return p
	}
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(file, []byte(quotaCatalog), 0o600))
	env := func(k string) string {
		if k == plans.FileVariable {
			return file
		}
		return ""
	}
	return func(_ *Config, deps *service.Deps) {
		a := authntest.New(t, authntest.Config{Redis: deps.Redis})
		start := func(def service.Definition, d service.Deps, caller string) *grpc.ClientConn {
			run, err := def.LoadConfig(config.NewEnv(env))
			require.NoError(t, err)
			inst, err := run(t.Context(), d)
			require.NoError(t, err)
			if inst.Stop != nil {
				t.Cleanup(func() { _ = inst.Stop(context.Background()) })
			}
			srv := grpctest.Start(t, inst.Register, a.Option())
			return srv.Dial(t, grpc.WithPerRPCCredentials(a.Services.PerRPCCredentials(caller)))
		}
		base := service.Deps{Logger: slog.New(slog.DiscardHandler), Redis: deps.Redis, PublicURL: "https://app.backplane.test", Issuer: authntest.Issuer}
		subDeps := base
		subDeps.DB = schemaPool("subscription")
		subConn := start(subscription.Definition(), subDeps, "usage")
		notify := grpctest.Start(t, func(reg grpc.ServiceRegistrar) {
			notificationv1.RegisterNotificationServiceServer(reg, notificationv1.UnimplementedNotificationServiceServer{})
		}, a.Option())
		usageDeps := base
		usageDeps.DB = schemaPool("usage")
		usageDeps.Peers = map[string]*grpc.ClientConn{
			"subscription": subConn,
			"notification": notify.Dial(t, grpc.WithPerRPCCredentials(a.Services.PerRPCCredentials("usage"))),
		}
		deps.DB = pool
		deps.Peers = map[string]*grpc.ClientConn{"usage": start(usage.Definition(), usageDeps, "asset")}
	}
}

// Declarations reserve storage against the plan's quota; deletion and failure give it
// back; concurrent declarations of one user cannot together pass it.
func TestStorageQuota(t *testing.T) {
	t.Parallel()
	b := setup(t, fileBucket(t), withUsage(t))
	user := uuid.New()
	ctx := b.as(t, user)
	create := func(size int64) (*assetv1.CreateAssetResponse, error) {
		return b.api.CreateAsset(ctx, &assetv1.CreateAssetRequest{Filename: "f.png", ContentType: "image/png", SizeBytes: size})
	}

	t.Run("over the quota: RESOURCE_EXHAUSTED with a QuotaFailure", func(t *testing.T) {
		_, err := create(quotaLimit + 1)
		require.Equal(t, codes.ResourceExhausted, status.Code(err))
		var qf *errdetails.QuotaFailure
		for _, d := range status.Convert(err).Details() {
			if v, ok := d.(*errdetails.QuotaFailure); ok {
				qf = v
			}
		}
		require.NotNil(t, qf, "the refusal says which quota")
		require.Equal(t, "user:"+user.String(), qf.GetViolations()[0].GetSubject())
	})

	t.Run("concurrent declarations cannot together pass it", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var ok []string
		for range 6 {
			wg.Go(func() {
				resp, err := create(quotaLimit / 3)
				if err == nil {
					mu.Lock()
					ok = append(ok, resp.GetAsset().GetId())
					mu.Unlock()
					return
				}
				require.Equal(t, codes.ResourceExhausted, status.Code(err))
			})
		}
		wg.Wait()
		require.Len(t, ok, 3, "three thirds fit, the rest do not")
		for _, id := range ok {
			_, err := b.api.DeleteAsset(ctx, &assetv1.DeleteAssetRequest{AssetId: id})
			require.NoError(t, err)
		}
	})

	t.Run("deletion gives the storage back", func(t *testing.T) {
		data := pngBytes(quotaLimit - 100)
		resp, err := b.upload(ctx, &assetv1.UploadAssetMetadata{Filename: "a.png", ContentType: "image/png", SizeBytes: int64(len(data))}, data, 4096)
		require.NoError(t, err)
		_, err = create(500)
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "the stored file holds its share")
		_, err = b.api.DeleteAsset(ctx, &assetv1.DeleteAssetRequest{AssetId: resp.GetAsset().GetId()})
		require.NoError(t, err)
		_, err = create(500)
		require.NoError(t, err)
	})

	t.Run("a failed upload gives its reservation back", func(t *testing.T) {
		data := pngBytes(quotaLimit - 1000)
		_, err := b.upload(ctx, &assetv1.UploadAssetMetadata{Filename: "a.png", ContentType: "image/png", SizeBytes: int64(len(data)), Sha256: sha([]byte("no"))}, data, 4096)
		require.Equal(t, codes.InvalidArgument, status.Code(err))
		_, err = b.upload(ctx, &assetv1.UploadAssetMetadata{Filename: "a.png", ContentType: "image/png", SizeBytes: int64(len(data))}, data, 4096)
		require.NoError(t, err)
	})
}
