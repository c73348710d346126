package asset

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/service"
)

func redirecting(c *Config, _ *service.Deps) { c.DownloadRedirect = true }

// drain reads a download: the redirect URL its headers name ("" when it streams) and the
// bytes that followed.
func drain(stream grpc.ServerStreamingClient[httpbody.HttpBody], err error) (string, []byte, error) {
	if err != nil {
		return "", nil, err
	}
	md, err := stream.Header()
	if err != nil {
		return "", nil, err
	}
	var got []byte
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, err
		}
		got = append(got, msg.GetData()...)
	}
	loc := ""
	if v := md.Get(HeaderRedirectURL); len(v) > 0 {
		loc = v[0]
	}
	return loc, got, nil
}

// answer is what follow read: the status and headers of a closed response.
type answer struct {
	StatusCode int
	Header     http.Header
}

// follow GETs a redirect URL, as a browser would, with extra headers.
func follow(t *testing.T, loc string, header http.Header) (answer, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, loc, nil)
	require.NoError(t, err)
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{StatusCode: resp.StatusCode, Header: resp.Header}, b
}

// On a bucket that signs URLs, a download that accepts a redirect is answered with the
// headers alone, naming a signed URL of the object that expires as configured and whose
// answer carries the asset's type and disposition; the bucket serves ranges of it. One
// that does not accept it streams, as does a range.
func TestDownloadRedirectsToTheBucket(t *testing.T) {
	t.Parallel()
	b := setup(t, s3Bucket(t), redirecting)
	user := uuid.New()
	data := pngBytes(300_000)
	a := b.ready(t, user, data)
	ctx := b.as(t, user)

	loc, got, err := drain(b.api.DownloadAssetContent(ctx, &assetv1.DownloadAssetContentRequest{AssetId: a.GetId(), AcceptRedirect: true}))
	require.NoError(t, err)
	require.Empty(t, got, "a redirect carries no bytes")
	u, err := url.Parse(loc)
	require.NoError(t, err)
	q := u.Query()
	require.NotEmpty(t, q.Get("X-Amz-Signature"), "signed")
	require.Equal(t, "60", q.Get("X-Amz-Expires"), "the default expiry, a minute")
	require.Equal(t, "image/png", q.Get("response-content-type"))

	resp, body := follow(t, loc, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, data, body)
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	require.Equal(t, `inline; filename="a b_.png"; filename*=UTF-8''a%20b%22.png`, resp.Header.Get("Content-Disposition"))
	require.Equal(t, redirectCacheControl, resp.Header.Get("Cache-Control"))

	resp, body = follow(t, loc, http.Header{"Range": {"bytes=10-19"}})
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, data[10:20], body)

	for name, req := range map[string]*assetv1.DownloadAssetContentRequest{
		"not accepted": {AssetId: a.GetId()},
		"a range":      {AssetId: a.GetId(), ReadOffset: 5, AcceptRedirect: true},
	} {
		loc, got, err := drain(b.api.DownloadAssetContent(ctx, req))
		require.NoError(t, err, name)
		require.Empty(t, loc, name)
		require.Equal(t, data[req.GetReadOffset():], got, name)
	}

	// A signed URL of ours may redirect too.
	info, err := b.api.GetAsset(ctx, &assetv1.GetAssetRequest{AssetId: a.GetId()})
	require.NoError(t, err)
	link, err := url.Parse(info.GetDownloadUrl())
	require.NoError(t, err)
	expires, err := strconv.ParseInt(link.Query().Get("expires"), 10, 64)
	require.NoError(t, err)
	loc, got, err = drain(b.api.DownloadSignedAssetContent(t.Context(), &assetv1.DownloadSignedAssetContentRequest{
		AssetId: a.GetId(), Expires: expires, Signature: link.Query().Get("signature"), AcceptRedirect: true,
	}))
	require.NoError(t, err)
	require.Empty(t, got)
	_, body = follow(t, loc, nil)
	require.Equal(t, data, body)

	// Whoever is not the owner, and a deleted asset, get no URL.
	_, _, err = drain(b.api.DownloadAssetContent(b.as(t, uuid.New()), &assetv1.DownloadAssetContentRequest{AssetId: a.GetId(), AcceptRedirect: true}))
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = b.api.DeleteAsset(ctx, &assetv1.DeleteAssetRequest{AssetId: a.GetId()})
	require.NoError(t, err)
	_, _, err = drain(b.api.DownloadAssetContent(ctx, &assetv1.DownloadAssetContentRequest{AssetId: a.GetId(), AcceptRedirect: true}))
	require.Equal(t, codes.NotFound, status.Code(err))
}

// Active content is an attachment on the bucket's answer too.
func TestRedirectedActiveContentIsAnAttachment(t *testing.T) {
	t.Parallel()
	b := setup(t, s3Bucket(t), redirecting, func(c *Config, _ *service.Deps) { c.AllowedTypes = []string{"text/html"} })
	user := uuid.New()
	page := []byte("<!DOCTYPE html><html><script>alert(1)</script></html>")
	resp, err := b.upload(b.as(t, user), &assetv1.UploadAssetMetadata{Filename: "page.html", ContentType: "text/html", SizeBytes: int64(len(page))}, page, 1024)
	require.NoError(t, err)
	loc, _, err := drain(b.api.DownloadAssetContent(b.as(t, user), &assetv1.DownloadAssetContentRequest{AssetId: resp.GetAsset().GetId(), AcceptRedirect: true}))
	require.NoError(t, err)
	got, body := follow(t, loc, nil)
	require.Equal(t, page, body)
	require.Equal(t, "text/html", got.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="page.html"; filename*=UTF-8''page.html`, got.Header.Get("Content-Disposition"))
}

// A bucket that cannot sign URLs (a directory) streams every download, redirect or not;
// and with the setting off, a bucket that can sign streams too.
func TestDownloadsStreamWithoutRedirects(t *testing.T) {
	t.Parallel()
	for name, b := range map[string]*bundle{
		"file bucket, redirects on": setup(t, fileBucket(t), redirecting),
		"s3 bucket, redirects off":  setup(t, s3Bucket(t)),
	} {
		user := uuid.New()
		data := pngBytes(2000)
		a := b.ready(t, user, data)
		loc, got, err := drain(b.api.DownloadAssetContent(b.as(t, user), &assetv1.DownloadAssetContentRequest{AssetId: a.GetId(), AcceptRedirect: true}))
		require.NoError(t, err, name)
		require.Empty(t, loc, name)
		require.Equal(t, data, got, name)
	}
}
