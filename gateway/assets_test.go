package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/backplane/backplane/gateway"
	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/grpccodec"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services"
	"github.com/backplane/backplane/services/asset"
	"github.com/backplane/backplane/services/subscription"
)

// TestMain registers the file codec, as the backplane command does, so that the edge's
// download calls, which ask for it, go over it. It also gives the AWS SDK static
// credentials, as an operator's environment would, so that the S3 buckets the redirect
// tests open can sign URLs (the test server checks no signature).
func TestMain(m *testing.M) {
	grpccodec.Register()
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret", "AWS_EC2_METADATA_DISABLED": "true"} {
		if err := os.Setenv(k, v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// assetHarness is the real asset service, on a private database and a directory bucket,
// behind the real edge; both check credentials with the same authentication as in
// production, against a key set of the test's own.
type assetHarness struct {
	rest     *httptest.Server
	issuer   *authn.Issuer
	sessions *authn.LiveSessions
	maxBytes int64
	blobDir  string        // the directory bucket's root
	subPool  *pgxpool.Pool // the subscription service's schema, with a plan catalogue
}

const assetTestIssuer = "https://auth.backplane.test"

// assetSetup starts the harness. With a plan catalogue, the real subscription service
// runs beside the asset service with it, and its plans' max_upload_bytes apply.
func assetSetup(t testing.TB, maxBytes int64, catalog ...string) *assetHarness {
	t.Helper()
	return assetSetupWith(t, assetOptions{maxBytes: maxBytes, catalog: catalog})
}

// assetOptions vary the harness.
type assetOptions struct {
	maxBytes int64
	catalog  []string
	// blobURL is the bucket instead of a directory (blobDir is then empty).
	blobURL string
	// redirect is the asset service's DownloadRedirect.
	redirect bool
}

func assetSetupWith(t testing.TB, o assetOptions) *assetHarness {
	t.Helper()
	maxBytes, catalog := o.maxBytes, o.catalog
	h := &assetHarness{maxBytes: maxBytes}
	steps := []dbtest.Option{dbtest.WithStep(fmt.Sprintf("river migration %d", jobs.SchemaVersion()), func(ctx context.Context, pool *pgxpool.Pool) error {
		_, err := jobs.Migrate(ctx, pool, "asset", nil)
		return err
	})}
	if len(catalog) > 0 {
		steps = append(steps, dbtest.WithMigrations("subscription", subscription.Definition().Migrations))
	}
	pool := dbtest.NewPool(t, "asset", asset.Definition().Migrations, steps...)
	rdb := redistest.Client(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	keys, err := authn.NewKeySet(authn.SigningKey{ID: authn.KeyID(priv.Public().(ed25519.PublicKey)), Private: priv})
	require.NoError(t, err)
	h.issuer, err = authn.NewIssuer(authn.IssuerConfig{Issuer: assetTestIssuer, Audience: authn.Audience, TTL: time.Hour}, keys)
	require.NoError(t, err)
	h.sessions = authn.NewLiveSessions(rdb, authn.WithKeyPrefix("gateway-asset-test:"+rand.Text()+":"))
	verifier, err := authn.NewVerifier(authn.VerifierConfig{
		Issuer: assetTestIssuer, Audience: authn.Audience, Keys: authn.IssuerJWKS{Issuer: h.issuer}, Sessions: h.sessions,
	})
	require.NoError(t, err)
	tokens, err := authn.NewHMACServiceTokens([]byte("0123456789abcdef0123456789abcdef"), time.Minute, nil)
	require.NoError(t, err)
	interceptor, err := authn.NewInterceptor(authn.InterceptorConfig{
		Tokens: verifier, APIKeys: refuseKeys{}, Services: tokens, Logger: discard(),
	})
	require.NoError(t, err)

	deps := service.Deps{Logger: slog.New(slog.DiscardHandler), DB: pool, Redis: rdb, PublicURL: "https://app.backplane.test"}
	if len(catalog) > 0 {
		h.subPool = startPlans(t, pool, rdb, catalog[0], interceptor, tokens, &deps)
	}
	blobDir, blobURL := "", o.blobURL
	if blobURL == "" {
		blobDir = t.TempDir()
		blobURL = "file://" + filepath.ToSlash(blobDir)
	}
	srv, err := asset.New(t.Context(), asset.Config{
		BlobURL:                blobURL,
		MaxBytes:               h.maxBytes,
		AllowedTypes:           []string{"image/png", "text/plain", "text/html", "application/octet-stream"},
		SigningKey:             []byte("0123456789abcdef0123456789abcdef"),
		DownloadRedirect:       o.redirect,
		DownloadRedirectExpiry: time.Minute,
	}, deps)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	svc := grpctest.Start(t, func(reg grpc.ServiceRegistrar) { assetv1.RegisterAssetServiceServer(reg, srv) },
		grpctest.WithAuthenticator(interceptor))

	backends := map[string]grpc.ClientConnInterface{}
	for _, owner := range services.Names() {
		backends[owner] = svc.Conn
	}
	cfg := gateway.Config{Logger: discard(), Server: grpctest.ServerConfig(t), Backends: backends, APIs: services.APIs()}
	cfg.Server.Authenticate = grpcserver.Interceptors{
		Unary: []grpc.UnaryServerInterceptor{interceptor.Unary()}, Stream: []grpc.StreamServerInterceptor{interceptor.Stream()},
	}
	gw, err := gateway.New(context.Background(), cfg)
	require.NoError(t, err)
	h.rest = httptest.NewServer(gw.REST())
	t.Cleanup(h.rest.Close)
	h.blobDir = blobDir
	return h
}

type refuseKeys struct{}

func (refuseKeys) Introspect(context.Context, string) (identity.Principal, error) {
	return identity.Principal{}, authn.ErrInvalidToken
}

// token signs user in: an access token on a live session.
func (h *assetHarness) token(t testing.TB, user uuid.UUID) string {
	t.Helper()
	session := uuid.NewString()
	require.NoError(t, h.sessions.MarkLive(t.Context(), session, time.Now().Add(time.Hour)))
	tok, _, err := h.issuer.Issue(user.String(), session, []string{authn.RoleUser})
	require.NoError(t, err)
	return tok
}

// call makes a request as the holder of token ("" for none) and reads the answer.
func (h *assetHarness) call(t testing.TB, token, method, path string, body io.Reader, header http.Header) (reply, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.rest.URL+path, body)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{StatusCode: resp.StatusCode, Header: resp.Header}, b
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return out
}

func pngFile(n int) []byte {
	data := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, n)...)
	_, _ = rand.Read(data[8:])
	return data
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// create declares a file over REST and returns its id.
func (h *assetHarness) create(t testing.TB, token, filename, contentType string, size int) string {
	t.Helper()
	body := fmt.Sprintf(`{"filename":%q,"contentType":%q,"sizeBytes":"%d"}`, filename, contentType, size)
	resp, b := h.call(t, token, "POST", "/v1/assets", strings.NewReader(body), http.Header{"Content-Type": {"application/json"}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return decode(t, b)["asset"].(map[string]any)["id"].(string)
}

func TestRESTUploadAndDownload(t *testing.T) {
	t.Parallel()
	h := assetSetup(t, 4<<20)
	owner := h.token(t, uuid.New())
	data := pngFile(600_000)
	id := h.create(t, owner, "été \"photo\".png", "image/png", len(data))

	t.Run("put the bytes", func(t *testing.T) {
		resp, b := h.call(t, owner, "PUT", "/v1/assets/"+id+"/content", bytes.NewReader(data), http.Header{"Content-Type": {"image/png"}})
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		a := decode(t, b)["asset"].(map[string]any)
		require.Equal(t, "ASSET_STATE_READY", a["state"])
		require.Equal(t, hexSHA(data), a["sha256"])
	})
	etag := `"` + hexSHA(data) + `"`
	t.Run("download whole", func(t *testing.T) {
		resp, b := h.call(t, owner, "GET", "/v1/assets/"+id+"/content", nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		require.Equal(t, data, b)
		require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
		require.Equal(t, fmt.Sprint(len(data)), resp.Header.Get("Content-Length"))
		require.Equal(t, etag, resp.Header.Get("ETag"))
		require.Equal(t, `inline; filename="_t_ _photo_.png"; filename*=UTF-8''%C3%A9t%C3%A9%20%22photo%22.png`, resp.Header.Get("Content-Disposition"))
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "sandbox")
	})
	t.Run("if-none-match", func(t *testing.T) {
		resp, b := h.call(t, owner, "GET", "/v1/assets/"+id+"/content", nil, http.Header{"If-None-Match": {etag}})
		require.Equal(t, http.StatusNotModified, resp.StatusCode)
		require.Empty(t, b)
	})
	size := len(data)
	for name, tc := range map[string]struct {
		spec       string
		status     int
		want       []byte
		contentRng string
	}{
		"first byte":     {"bytes=0-0", http.StatusPartialContent, data[:1], fmt.Sprintf("bytes 0-0/%d", size)},
		"last byte":      {fmt.Sprintf("bytes=%d-", size-1), http.StatusPartialContent, data[size-1:], fmt.Sprintf("bytes %d-%d/%d", size-1, size-1, size)},
		"suffix":         {"bytes=-10", http.StatusPartialContent, data[size-10:], fmt.Sprintf("bytes %d-%d/%d", size-10, size-1, size)},
		"end past size":  {"bytes=100-99999999", http.StatusPartialContent, data[100:], fmt.Sprintf("bytes 100-%d/%d", size-1, size)},
		"beyond the end": {fmt.Sprintf("bytes=%d-", size), http.StatusRequestedRangeNotSatisfiable, nil, fmt.Sprintf("bytes */%d", size)},
	} {
		t.Run("range "+name, func(t *testing.T) {
			resp, b := h.call(t, owner, "GET", "/v1/assets/"+id+"/content", nil, http.Header{"Range": {tc.spec}})
			require.Equal(t, tc.status, resp.StatusCode, string(b))
			require.Equal(t, tc.contentRng, resp.Header.Get("Content-Range"))
			if tc.want != nil {
				require.Equal(t, tc.want, b)
			}
		})
	}
	t.Run("another user's asset is not found", func(t *testing.T) {
		other := h.token(t, uuid.New())
		resp, _ := h.call(t, other, "GET", "/v1/assets/"+id+"/content", nil, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		resp, _ = h.call(t, other, "PUT", "/v1/assets/"+id+"/content", bytes.NewReader(data), nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		resp, _ = h.call(t, other, "GET", "/v1/assets/"+id, nil, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
	})
	t.Run("signed URL", func(t *testing.T) {
		resp, b := h.call(t, owner, "GET", "/v1/assets/"+id, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		link, err := url.Parse(decode(t, b)["downloadUrl"].(string))
		require.NoError(t, err)
		resp, b = h.call(t, "", "GET", link.RequestURI(), nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		require.Equal(t, data, b)
		q := link.Query()
		q.Set("expires", fmt.Sprint(time.Now().Add(5*time.Minute).Unix()))
		resp, _ = h.call(t, "", "GET", link.Path+"?"+q.Encode(), nil, nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "tampered")
		q.Set("expires", fmt.Sprint(time.Now().Add(-time.Minute).Unix()))
		q.Set("signature", link.Query().Get("signature"))
		resp, _ = h.call(t, "", "GET", link.Path+"?"+q.Encode(), nil, nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "expired")
	})
}

// form builds a multipart body: fields first, then a file part.
func form(t *testing.T, fields map[string]string, filename, contentType string, data []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		require.NoError(t, mw.WriteField(k, v))
	}
	hdr := map[string][]string{
		"Content-Disposition": {fmt.Sprintf(`form-data; name="file"; filename=%q`, filename)},
		"Content-Type":        {contentType},
	}
	w, err := mw.CreatePart(hdr)
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	return &buf, mw.FormDataContentType()
}

func TestRESTFormUpload(t *testing.T) {
	t.Parallel()
	h := assetSetup(t, 4<<20)
	owner := h.token(t, uuid.New())

	t.Run("a browser's form", func(t *testing.T) {
		data := []byte(strings.Repeat("hello, world\n", 1000))
		body, ct := form(t, map[string]string{"metadata.album": "notes"}, `C:\Users\me\notes.txt`, "text/plain", data)
		resp, b := h.call(t, owner, "POST", "/v1/assets:upload", body, http.Header{"Content-Type": {ct}})
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		a := decode(t, b)["asset"].(map[string]any)
		require.Equal(t, "notes.txt", a["filename"])
		require.Equal(t, "ASSET_STATE_READY", a["state"])
		require.Equal(t, fmt.Sprint(len(data)), a["sizeBytes"])
		require.Equal(t, map[string]any{"album": "notes"}, a["metadata"])
	})
	t.Run("past the size limit: 413", func(t *testing.T) {
		body, ct := form(t, nil, "big.bin", "application/octet-stream", make([]byte, h.maxBytes+1))
		resp, b := h.call(t, owner, "POST", "/v1/assets:upload", body, http.Header{"Content-Type": {ct}})
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
		require.Equal(t, "RESOURCE_EXHAUSTED", codeName(decode(t, b)["code"]))
	})
	t.Run("a checksum that does not match: 400", func(t *testing.T) {
		body, ct := form(t, map[string]string{"sha256": hexSHA([]byte("x"))}, "a.png", "image/png", pngFile(100))
		resp, b := h.call(t, owner, "POST", "/v1/assets:upload", body, http.Header{"Content-Type": {ct}})
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(b))
	})
	t.Run("html is only ever an attachment", func(t *testing.T) {
		page := []byte("<!DOCTYPE html><html><script>alert(document.cookie)</script></html>")
		body, ct := form(t, nil, "page.html", "text/html", page)
		resp, b := h.call(t, owner, "POST", "/v1/assets:upload", body, http.Header{"Content-Type": {ct}})
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		id := decode(t, b)["asset"].(map[string]any)["id"].(string)
		resp, b = h.call(t, owner, "GET", "/v1/assets/"+id+"/content", nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, page, b)
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;"))
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "sandbox")
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	})
	t.Run("not a form", func(t *testing.T) {
		resp, _ := h.call(t, owner, "POST", "/v1/assets:upload", strings.NewReader("--x--"), http.Header{"Content-Type": {"multipart/form-data"}})
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "a form without a boundary")
	})
	t.Run("without credentials", func(t *testing.T) {
		body, ct := form(t, nil, "a.txt", "text/plain", []byte("hi"))
		resp, _ := h.call(t, "", "POST", "/v1/assets:upload", body, http.Header{"Content-Type": {ct}})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
}

// codeName is a status body's code as its name, whichever way it was written.
func codeName(v any) string {
	if f, ok := v.(float64); ok && f == 8 {
		return "RESOURCE_EXHAUSTED"
	}
	return fmt.Sprint(v)
}
