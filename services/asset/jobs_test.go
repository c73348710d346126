package asset

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
)

// Deleting makes an asset unreadable at once; the erase job then removes its bytes and
// its row.
func TestEraseRemovesDeletedAssetsBytes(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		user := uuid.New()
		kept := b.ready(t, user, pngBytes(100))
		gone := b.ready(t, user, pngBytes(200))
		_, err := b.api.DeleteAsset(b.as(t, user), &assetv1.DeleteAssetRequest{AssetId: gone.GetId()})
		require.NoError(t, err)
		require.Len(t, b.objects(t), 2, "the bytes outlive the row's deletion briefly")
		n, err := b.srv.erase(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		objs := b.objects(t)
		require.Len(t, objs, 1)
		require.Contains(t, objs[0], kept.GetId())
		require.Zero(t, b.count(t, `SELECT count(*) FROM assets WHERE id = $1`, gone.GetId()))
	})
}

// The sweep deletes assets left PENDING for a day, giving their reservations back, and
// erases objects no asset names once they are an hour old.
func TestSweepRemovesAbandonedUploadsAndOrphans(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		user := uuid.New()
		ctx := b.as(t, user)
		kept := b.ready(t, user, pngBytes(100))
		_, err := b.api.CreateAsset(ctx, &assetv1.CreateAssetRequest{Filename: "late.png", ContentType: "image/png", SizeBytes: 5000})
		require.NoError(t, err)
		orphan := objectKey(uuid.New(), uuid.New())
		require.NoError(t, b.bucket.WriteAll(t.Context(), orphan, []byte("left behind"), nil))

		expired, orphans, err := b.srv.sweep(t.Context())
		require.NoError(t, err)
		require.Zero(t, expired, "a fresh declaration is not abandoned")
		require.Zero(t, orphans, "an object that young may be an upload completing")

		b.clock.shift = pendingTTL + time.Hour
		expired, orphans, err = b.srv.sweep(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, expired)
		require.Equal(t, 1, orphans)
		objs := b.objects(t)
		require.Len(t, objs, 1)
		require.Contains(t, objs[0], kept.GetId())
		require.Equal(t, int64(len(pngBytes(100))), b.count(t, `SELECT level_bytes FROM storage_levels WHERE owner_user_id = $1`, user))
		require.Equal(t, int64(1), b.count(t, `SELECT count(*) FROM assets WHERE state <> 'DELETED'`))
	})
}
