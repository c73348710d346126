package asset

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
)

func TestUploadStoresTheFileWhole(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		user := uuid.New()
		data := pngBytes(300_000)
		resp, err := b.upload(b.as(t, user), &assetv1.UploadAssetMetadata{
			Filename: "cat.png", ContentType: "image/png", SizeBytes: int64(len(data)), Sha256: sha(data),
			Metadata: map[string]string{"album": "pets"},
		}, data, 64<<10)
		require.NoError(t, err)
		a := resp.GetAsset()
		require.Equal(t, assetv1.AssetState_ASSET_STATE_READY, a.GetState())
		require.Equal(t, sha(data), a.GetSha256())
		require.Equal(t, int64(len(data)), a.GetSizeBytes())
		require.Equal(t, user.String(), a.GetOwnerUserId())
		require.Equal(t, map[string]string{"album": "pets"}, a.GetMetadata())

		got, err := b.download(b.as(t, user), &assetv1.DownloadAssetContentRequest{AssetId: a.GetId()})
		require.NoError(t, err)
		require.Equal(t, data, got)
		require.Len(t, b.objects(t), 1)
		require.Equal(t, int64(len(data)), b.count(t, `SELECT level_bytes FROM storage_levels WHERE owner_user_id = $1`, user))
	})
}

// An upload whose bytes do not match what was declared stores nothing: no object, no
// READY row, no reservation.
func TestMismatchedUploadsLeaveNothing(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		user := uuid.New()
		ctx := b.as(t, user)
		data := pngBytes(200_000)
		for name, tc := range map[string]struct {
			meta  *assetv1.UploadAssetMetadata
			data  []byte
			field string
		}{
			"wrong checksum": {&assetv1.UploadAssetMetadata{Filename: "a.png", ContentType: "image/png", SizeBytes: int64(len(data)), Sha256: sha([]byte("other"))}, data, "sha256"},
			"too few bytes":  {&assetv1.UploadAssetMetadata{Filename: "a.png", ContentType: "image/png", SizeBytes: int64(len(data)) + 1}, data, "size_bytes"},
			"too many bytes": {&assetv1.UploadAssetMetadata{Filename: "a.png", ContentType: "image/png", SizeBytes: int64(len(data)) - 1}, data, "size_bytes"},
			// A picture's signature on an HTML page: the declared type says HTML, the bytes
			// say PNG.
			"type spoofing, png header on html": {&assetv1.UploadAssetMetadata{Filename: "a.html", ContentType: "text/plain"}, append(pngBytes(0), []byte("<html><script>alert(1)</script></html>")...), "content_type"},
			"html declared as a picture":        {&assetv1.UploadAssetMetadata{Filename: "a.png", ContentType: "image/png"}, []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"), "content_type"},
			"empty":                             {&assetv1.UploadAssetMetadata{Filename: "a.txt", ContentType: "text/plain"}, nil, "content"},
		} {
			_, err := b.upload(ctx, tc.meta, tc.data, 32<<10)
			require.Equal(t, codes.InvalidArgument, status.Code(err), name+": %v", err)
			require.Contains(t, badFields(err), tc.field, name)
		}
		require.Empty(t, b.objects(t))
		require.Zero(t, b.count(t, `SELECT count(*) FROM assets WHERE state <> 'DELETED'`))
		require.Zero(t, b.count(t, `SELECT level_bytes FROM storage_levels WHERE owner_user_id = $1`, user))
	})
}

func badFields(err error) []string {
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}

// The size limit stops an upload as soon as it is passed, not after every byte.
func TestUploadPastTheLimitStopsEarly(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		ctx := b.as(t, uuid.New())
		_, err := b.upload(ctx, &assetv1.UploadAssetMetadata{Filename: "big.bin", ContentType: "application/octet-stream", SizeBytes: b.cfg.MaxBytes + 1}, nil, 1)
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "declared too large: refused before any byte")

		stream, err := b.api.UploadAsset(ctx)
		require.NoError(t, err)
		require.NoError(t, stream.Send(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Metadata{Metadata: &assetv1.UploadAssetMetadata{Filename: "big.bin", ContentType: "application/octet-stream"}}}))
		chunk := make([]byte, 64<<10)
		var sent int64
		for sent < 64*b.cfg.MaxBytes {
			if stream.Send(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Chunk{Chunk: chunk}}) != nil {
				break
			}
			sent += int64(len(chunk))
		}
		_, err = stream.CloseAndRecv()
		require.Equal(t, codes.ResourceExhausted, status.Code(err))
		require.Less(t, sent, 64*b.cfg.MaxBytes, "the server ended the stream before the client stopped sending")
		require.Empty(t, b.objects(t))
		require.Zero(t, b.count(t, `SELECT count(*) FROM assets WHERE state <> 'DELETED'`))
	})
}

// A client that goes away mid-upload leaves nothing behind; the asset it declared is
// forgotten, and a later upload of the same file succeeds.
func TestAbortedUploadLeavesNothing(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		user := uuid.New()
		data := pngBytes(100_000)
		meta := &assetv1.UploadAssetMetadata{Filename: "a.png", ContentType: "image/png", SizeBytes: int64(len(data))}
		ctx, cancel := context.WithCancel(b.as(t, user))
		stream, err := b.api.UploadAsset(ctx)
		require.NoError(t, err)
		require.NoError(t, stream.Send(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Metadata{Metadata: meta}}))
		require.NoError(t, stream.Send(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Chunk{Chunk: data[:50_000]}}))
		// The server has the first chunk once it has declared the asset.
		require.Eventually(t, func() bool { return b.count(t, `SELECT count(*) FROM assets`) == 1 }, waitFor, tick)
		cancel()
		require.Eventually(t, func() bool {
			return b.count(t, `SELECT count(*) FROM assets WHERE state <> 'DELETED'`) == 0
		}, waitFor, tick)
		require.Empty(t, b.objects(t))

		resp, err := b.upload(b.as(t, user), meta, data, 16<<10)
		require.NoError(t, err)
		require.Equal(t, assetv1.AssetState_ASSET_STATE_READY, resp.GetAsset().GetState())
		require.Len(t, b.objects(t), 1)
	})
}

// CreateAsset then the bytes by id: a failed attempt leaves the asset PENDING, and a
// second attempt completes it; a READY asset takes no more bytes.
func TestDeclaredAssetTakesItsBytesOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		ctx := b.as(t, uuid.New())
		data := []byte(strings.Repeat("name,count\nwidgets,3\n", 100))
		created, err := b.api.CreateAsset(ctx, &assetv1.CreateAssetRequest{Filename: "w.csv", ContentType: "text/csv", SizeBytes: int64(len(data)), Sha256: sha(data)})
		require.NoError(t, err)
		id := created.GetAsset().GetId()
		require.Equal(t, assetv1.AssetState_ASSET_STATE_PENDING, created.GetAsset().GetState())

		_, err = b.uploadTo(ctx, id, data[:len(data)-1], 100)
		require.Equal(t, codes.InvalidArgument, status.Code(err))
		got, err := b.api.GetAsset(ctx, &assetv1.GetAssetRequest{AssetId: id})
		require.NoError(t, err)
		require.Equal(t, assetv1.AssetState_ASSET_STATE_PENDING, got.GetAsset().GetState())
		require.Empty(t, got.GetDownloadUrl())

		resp, err := b.uploadTo(ctx, id, data, 100)
		require.NoError(t, err)
		require.Equal(t, assetv1.AssetState_ASSET_STATE_READY, resp.GetAsset().GetState())
		_, err = b.uploadTo(ctx, id, data, 100)
		require.Equal(t, codes.FailedPrecondition, status.Code(err))
		_, err = b.api.UploadAssetContent(ctx, &assetv1.UploadAssetContentRequest{AssetId: id, Content: nil})
		require.Error(t, err)
		require.Len(t, b.objects(t), 1)
	})
}

func TestTypesOutsideTheAllowlistAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, fileBucket(t))
	_, err := b.api.CreateAsset(b.as(t, uuid.New()), &assetv1.CreateAssetRequest{Filename: "x.html", ContentType: "text/html", SizeBytes: 10})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, badFields(err), "content_type")
}
