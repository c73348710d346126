package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"
)

// s3BlobURL starts an S3-compatible server (gofakes3, in process) with an empty bucket
// and returns the bucket URL that reaches it, as MinIO and R2 are reached.
func s3BlobURL(t testing.TB) string {
	t.Helper()
	backend := s3mem.New()
	require.NoError(t, backend.CreateBucket("assets"))
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	q := url.Values{"endpoint": {srv.URL}, "use_path_style": {"true"}, "region": {"us-east-1"}}
	return "s3://assets?" + q.Encode()
}

// noFollow is a client that shows a redirect instead of following it.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get makes a request with noFollow, as the holder of token ("" for none).
func get(t testing.TB, method, rawURL, token string, header http.Header) (reply, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := noFollow.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{StatusCode: resp.StatusCode, Header: resp.Header}, b
}

// store stores data as a READY asset of the token's user over REST and returns its id.
func (h *assetHarness) store(t testing.TB, token, filename, contentType string, data []byte) string {
	t.Helper()
	id := h.create(t, token, filename, contentType, len(data))
	resp, b := h.call(t, token, "PUT", "/v1/assets/"+id+"/content", bytes.NewReader(data), http.Header{"Content-Type": {contentType}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return id
}

// With redirects on and an S3 bucket, a download is a 307 to a signed URL of the object,
// and following it (without credentials, as a browser does across origins) gives the
// bytes with the headers the door would have set; the bucket answers ranges. Owner
// checks, deletion and the signed URLs of GetAsset hold; HEAD and a current
// If-None-Match are answered by the door.
func TestRESTDownloadRedirectsToTheBucket(t *testing.T) {
	t.Parallel()
	h := assetSetupWith(t, assetOptions{maxBytes: 4 << 20, blobURL: s3BlobURL(t), redirect: true})
	owner := h.token(t, uuid.New())
	data := pngFile(300_000)
	id := h.store(t, owner, "été.png", "image/png", data)
	content := h.rest.URL + "/v1/assets/" + id + "/content"

	var loc string
	t.Run("a 307 to the bucket", func(t *testing.T) {
		resp, b := get(t, "GET", content, owner, nil)
		require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode, string(b))
		loc = resp.Header.Get("Location")
		require.NotEmpty(t, loc)
		require.False(t, strings.HasPrefix(loc, h.rest.URL), "the bucket's origin, not the door's: %s", loc)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		require.Empty(t, resp.Header.Get("ETag"))
	})
	t.Run("following it gives the bytes and the door's headers", func(t *testing.T) {
		resp, b := get(t, "GET", loc, "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		require.Equal(t, data, b)
		require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
		require.Equal(t, `inline; filename="_t_.png"; filename*=UTF-8''%C3%A9t%C3%A9.png`, resp.Header.Get("Content-Disposition"))
	})
	t.Run("the bucket answers a range", func(t *testing.T) {
		resp, b := get(t, "GET", content, owner, http.Header{"Range": {"bytes=100-199"}})
		require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode, string(b))
		resp, b = get(t, "GET", resp.Header.Get("Location"), "", http.Header{"Range": {"bytes=100-199"}})
		require.Equal(t, http.StatusPartialContent, resp.StatusCode)
		require.Equal(t, data[100:200], b)
		require.Equal(t, fmt.Sprintf("bytes 100-199/%d", len(data)), resp.Header.Get("Content-Range"))
	})
	t.Run("a client that follows redirects itself", func(t *testing.T) {
		resp, b := h.call(t, owner, "GET", "/v1/assets/"+id+"/content", nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		require.Equal(t, data, b)
	})
	t.Run("if-none-match and HEAD stay at the door", func(t *testing.T) {
		resp, _ := get(t, "GET", content, owner, http.Header{"If-None-Match": {`"` + hexSHA(data) + `"`}})
		require.Equal(t, http.StatusNotModified, resp.StatusCode)
		resp, _ = get(t, "HEAD", content, owner, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, fmt.Sprint(len(data)), resp.Header.Get("Content-Length"))
		require.Empty(t, resp.Header.Get("Location"))
	})
	t.Run("active content is an attachment at the bucket too", func(t *testing.T) {
		page := []byte("<!DOCTYPE html><html><script>alert(document.cookie)</script></html>")
		pid := h.store(t, owner, "page.html", "text/html", page)
		resp, _ := get(t, "GET", h.rest.URL+"/v1/assets/"+pid+"/content", owner, nil)
		require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
		resp, b := get(t, "GET", resp.Header.Get("Location"), "", nil)
		require.Equal(t, page, b)
		require.Equal(t, "text/html", resp.Header.Get("Content-Type"))
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;"), resp.Header.Get("Content-Disposition"))
	})
	t.Run("a signed URL of ours redirects too", func(t *testing.T) {
		resp, b := h.call(t, owner, "GET", "/v1/assets/"+id, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		link, err := url.Parse(decode(t, b)["downloadUrl"].(string))
		require.NoError(t, err)
		r, _ := get(t, "GET", h.rest.URL+link.RequestURI(), "", nil)
		require.Equal(t, http.StatusTemporaryRedirect, r.StatusCode)
		followed, body := get(t, "GET", r.Header.Get("Location"), "", nil)
		require.Equal(t, http.StatusOK, followed.StatusCode)
		require.Equal(t, data, body)
		q := link.Query()
		sig := []byte(q.Get("signature"))
		sig[0] ^= 1 // another letter of the alphabet, whichever it was
		q.Set("signature", string(sig))
		r, _ = get(t, "GET", h.rest.URL+link.Path+"?"+q.Encode(), "", nil)
		require.Equal(t, http.StatusForbidden, r.StatusCode, "tampered: no redirect")
	})
	t.Run("another user's asset is not found, and not redirected", func(t *testing.T) {
		resp, _ := get(t, "GET", content, h.token(t, uuid.New()), nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Location"))
	})
	t.Run("a deleted asset is not found, and not redirected", func(t *testing.T) {
		resp, b := h.call(t, owner, "DELETE", "/v1/assets/"+id, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		r, _ := get(t, "GET", content, owner, nil)
		require.Equal(t, http.StatusNotFound, r.StatusCode)
		require.Empty(t, r.Header.Get("Location"))
	})
}

// With redirects off, an S3 bucket's downloads stream through the door as before; with
// them on, a directory bucket's do too, since it cannot sign URLs.
func TestRESTDownloadsStreamWithoutRedirects(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]assetOptions{
		"s3, redirects off":       {maxBytes: 4 << 20, blobURL: s3BlobURL(t)},
		"directory, redirects on": {maxBytes: 4 << 20, redirect: true},
	} {
		h := assetSetupWith(t, o)
		owner := h.token(t, uuid.New())
		data := pngFile(100_000)
		id := h.store(t, owner, "a.png", "image/png", data)
		resp, b := get(t, "GET", h.rest.URL+"/v1/assets/"+id+"/content", owner, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, name)
		require.Equal(t, data, b, name)
		require.Equal(t, `"`+hexSHA(data)+`"`, resp.Header.Get("ETag"), name)
	}
}
