package asset

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/authn"
)

// ready uploads data as a PNG of user and returns the asset.
func (b *bundle) ready(t testing.TB, user uuid.UUID, data []byte) *assetv1.Asset {
	t.Helper()
	resp, err := b.upload(b.as(t, user), &assetv1.UploadAssetMetadata{Filename: "a b\".png", ContentType: "image/png", SizeBytes: int64(len(data))}, data, 64<<10)
	require.NoError(t, err)
	return resp.GetAsset()
}

func TestDownloadRanges(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		user := uuid.New()
		data := pngBytes(700_000)
		a := b.ready(t, user, data)
		ctx := b.as(t, user)
		size := int64(len(data))
		for name, tc := range map[string]struct {
			offset, limit int64
			want          []byte
		}{
			"first byte":     {0, 1, data[:1]},
			"last byte":      {size - 1, 0, data[size-1:]},
			"middle":         {1000, 300_000, data[1000:301_000]},
			"limit past end": {size - 10, 100, data[size-10:]},
			"everything":     {0, 0, data},
		} {
			got, err := b.download(ctx, &assetv1.DownloadAssetContentRequest{AssetId: a.GetId(), ReadOffset: tc.offset, ReadLimit: tc.limit})
			require.NoError(t, err, name)
			require.True(t, bytes.Equal(tc.want, got), name)
		}
		_, err := b.download(ctx, &assetv1.DownloadAssetContentRequest{AssetId: a.GetId(), ReadOffset: size})
		require.Equal(t, codes.OutOfRange, status.Code(err), "beyond the end")

		// The headers describe the whole file, for the REST door.
		stream, err := b.api.DownloadAssetContent(ctx, &assetv1.DownloadAssetContentRequest{AssetId: a.GetId(), ReadLimit: 1})
		require.NoError(t, err)
		md, err := stream.Header()
		require.NoError(t, err)
		require.Equal(t, []string{strconv.Itoa(len(data))}, md.Get(HeaderSize))
		require.Equal(t, []string{sha(data)}, md.Get(HeaderSHA256))
		require.Equal(t, []string{url.PathEscape(`a b".png`)}, md.Get(HeaderFilename))
		for {
			if _, err := stream.Recv(); errors.Is(err, io.EOF) {
				break
			}
		}
	})
}

// Another user's asset does not exist for them, whatever they try; a pending asset has
// no bytes to read.
func TestAssetsAreTheirOwners(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		owner, other := uuid.New(), uuid.New()
		a := b.ready(t, owner, pngBytes(1000))
		ctx := b.as(t, other)
		_, err := b.api.GetAsset(ctx, &assetv1.GetAssetRequest{AssetId: a.GetId()})
		require.Equal(t, codes.NotFound, status.Code(err))
		_, err = b.download(ctx, &assetv1.DownloadAssetContentRequest{AssetId: a.GetId()})
		require.Equal(t, codes.NotFound, status.Code(err))
		_, err = b.api.UpdateAsset(ctx, &assetv1.UpdateAssetRequest{Asset: &assetv1.Asset{Id: a.GetId(), Filename: "mine.png"}})
		require.Equal(t, codes.NotFound, status.Code(err))
		_, err = b.api.DeleteAsset(ctx, &assetv1.DeleteAssetRequest{AssetId: a.GetId()})
		require.Equal(t, codes.NotFound, status.Code(err))
		_, err = b.uploadTo(ctx, a.GetId(), []byte("x"), 1)
		require.Equal(t, codes.NotFound, status.Code(err))
		list, err := b.api.ListAssets(ctx, &assetv1.ListAssetsRequest{})
		require.NoError(t, err)
		require.Empty(t, list.GetAssets())

		pending, err := b.api.CreateAsset(b.as(t, owner), &assetv1.CreateAssetRequest{Filename: "p.png", ContentType: "image/png", SizeBytes: 10})
		require.NoError(t, err)
		_, err = b.download(b.as(t, owner), &assetv1.DownloadAssetContentRequest{AssetId: pending.GetAsset().GetId()})
		require.Equal(t, codes.FailedPrecondition, status.Code(err))
	})
}

// signedDownload reads an asset's bytes through a signed URL's query.
func (b *bundle) signedDownload(t testing.TB, rawURL string) ([]byte, error) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	id := u.Path[len("/v1/assets/") : len("/v1/assets/")+36]
	exp, _ := strconv.ParseInt(u.Query().Get("expires"), 10, 64)
	stream, err := b.api.DownloadSignedAssetContent(t.Context(), &assetv1.DownloadSignedAssetContentRequest{
		AssetId: id, Expires: exp, Signature: u.Query().Get("signature"),
	})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		out.Write(msg.GetData())
	}
}

func TestSignedDownloadURLs(t *testing.T) {
	t.Parallel()
	b := setup(t, fileBucket(t))
	user := uuid.New()
	data := pngBytes(5000)
	a := b.ready(t, user, data)
	got, err := b.api.GetAsset(b.as(t, user), &assetv1.GetAssetRequest{AssetId: a.GetId()})
	require.NoError(t, err)
	link := got.GetDownloadUrl()
	require.Contains(t, link, "https://app.backplane.test/v1/assets/"+a.GetId()+"/content:signed?")
	require.LessOrEqual(t, time.Until(got.GetDownloadExpireTime().AsTime()), 15*time.Minute)

	body, err := b.signedDownload(t, link)
	require.NoError(t, err, "no credentials needed")
	require.Equal(t, data, body)

	u, _ := url.Parse(link)
	tamper := func(key, value string) string {
		v := *u
		q := v.Query()
		q.Set(key, value)
		v.RawQuery = q.Encode()
		return v.String()
	}
	sig := u.Query().Get("signature")
	exp, _ := strconv.ParseInt(u.Query().Get("expires"), 10, 64)
	other := b.ready(t, user, pngBytes(10))
	for name, bad := range map[string]string{
		"signature altered": tamper("signature", sig[:len(sig)-2]+"AA"),
		"expiry extended":   tamper("expires", strconv.FormatInt(exp+60, 10)),
		"another asset":     "https://app.backplane.test/v1/assets/" + other.GetId() + "/content:signed?" + u.RawQuery,
	} {
		_, err := b.signedDownload(t, bad)
		require.Equal(t, codes.PermissionDenied, status.Code(err), name)
	}
	b.clock.shift = downloadURLTTL + time.Second
	_, err = b.signedDownload(t, link)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "expired")
	b.clock.shift = 0

	_, err = b.api.DeleteAsset(b.as(t, user), &assetv1.DeleteAssetRequest{AssetId: a.GetId()})
	require.NoError(t, err)
	_, err = b.signedDownload(t, link)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "deleted")
}

func TestListUpdateDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, fileBucket(t))
	user, other := uuid.New(), uuid.New()
	ctx := b.as(t, user)
	var ids []string
	for range 3 {
		ids = append(ids, b.ready(t, user, pngBytes(100)).GetId())
	}
	doc, err := b.api.CreateAsset(ctx, &assetv1.CreateAssetRequest{Filename: "d.pdf", ContentType: "application/pdf", SizeBytes: 100})
	require.NoError(t, err)
	b.ready(t, other, pngBytes(100))

	page, err := b.api.ListAssets(ctx, &assetv1.ListAssetsRequest{PageSize: 2, ContentTypePrefix: "image/"})
	require.NoError(t, err)
	require.Len(t, page.GetAssets(), 2)
	require.Equal(t, ids[2], page.GetAssets()[0].GetId(), "newest first")
	_, err = b.api.ListAssets(ctx, &assetv1.ListAssetsRequest{PageToken: page.GetNextPageToken()})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "filters differ from the first page's")
	page, err = b.api.ListAssets(ctx, &assetv1.ListAssetsRequest{PageSize: 2, ContentTypePrefix: "image/", PageToken: page.GetNextPageToken()})
	require.NoError(t, err)
	require.Len(t, page.GetAssets(), 1)
	require.Empty(t, page.GetNextPageToken())
	pending, err := b.api.ListAssets(ctx, &assetv1.ListAssetsRequest{State: assetv1.AssetState_ASSET_STATE_PENDING})
	require.NoError(t, err)
	require.Len(t, pending.GetAssets(), 1)
	require.Equal(t, doc.GetAsset().GetId(), pending.GetAssets()[0].GetId())

	all, err := b.api.ListAssets(b.as(t, uuid.New(), authn.RoleAdmin), &assetv1.ListAssetsRequest{})
	require.NoError(t, err)
	require.Len(t, all.GetAssets(), 5, "an admin lists everyone's")

	upd, err := b.api.UpdateAsset(ctx, &assetv1.UpdateAssetRequest{Asset: &assetv1.Asset{Id: ids[0], Filename: "renamed.png", Metadata: map[string]string{"k": "v"}}})
	require.NoError(t, err)
	require.Equal(t, "renamed.png", upd.GetAsset().GetFilename())
	require.Equal(t, map[string]string{"k": "v"}, upd.GetAsset().GetMetadata())

	levelBefore := b.count(t, `SELECT level_bytes FROM storage_levels WHERE owner_user_id = $1`, user)
	del, err := b.api.DeleteAsset(ctx, &assetv1.DeleteAssetRequest{AssetId: ids[0]})
	require.NoError(t, err)
	require.Equal(t, assetv1.AssetState_ASSET_STATE_DELETED, del.GetAsset().GetState())
	_, err = b.api.GetAsset(ctx, &assetv1.GetAssetRequest{AssetId: ids[0]})
	require.Equal(t, codes.NotFound, status.Code(err), "unreadable at once")
	_, err = b.download(ctx, &assetv1.DownloadAssetContentRequest{AssetId: ids[0]})
	require.Equal(t, codes.NotFound, status.Code(err))
	require.Equal(t, levelBefore-int64(len(pngBytes(100))), b.count(t, `SELECT level_bytes FROM storage_levels WHERE owner_user_id = $1`, user))
}
