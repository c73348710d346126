package main_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// envS3Serve asks a child of this test binary to be an S3-compatible server (gofakes3,
// memory backend) listening on the address it names, instead of running tests: the
// benchmarks' bucket is then a process of its own, as a real object store is.
const envS3Serve = "BACKPLANE_TEST_S3_SERVE"

// s3Buckets are the buckets the child creates: one per mesh, so that one mesh's sweeper
// never erases another's objects as orphans, and one for the direct baseline.
var s3Buckets = []string{"streamed", "redirected", "direct"}

// The static credentials the benchmarks sign with; gofakes3 does not check them.
const (
	s3Key    = "bench-key"
	s3Secret = "bench-secret"
	s3Region = "us-east-1"
)

// serveS3 runs the S3-compatible server until its parent closes stdin (or dies).
func serveS3(addr string) int {
	backend := s3mem.New()
	for _, name := range s3Buckets {
		if err := backend.CreateBucket(name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	srv := &http.Server{Addr: addr, Handler: gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// s3Store is an S3-compatible server in a child process.
type s3Store struct {
	endpoint string // http://host:port
	cmd      *exec.Cmd
}

func startS3(t testing.TB) *s3Store {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$") //nolint:gosec // this test binary itself, as a child
	cmd.Env = append(os.Environ(), envS3Serve+"="+addr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", addr)
		if err == nil {
			_ = c.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "the S3 server did not listen within 30s")
		time.Sleep(20 * time.Millisecond)
	}
	return &s3Store{endpoint: "http://" + addr, cmd: cmd}
}

// blobURL is the BACKPLANE_BLOB_URL of bucket name.
func (s *s3Store) blobURL(name string) string {
	q := url.Values{"endpoint": {s.endpoint}, "use_path_style": {"true"}, "region": {s3Region}}
	return "s3://" + name + "?" + q.Encode()
}

// env is the settings of a mesh whose assets live in bucket name.
func (s *s3Store) env(name string) []string {
	return []string{
		"BACKPLANE_BLOB_URL=" + s.blobURL(name),
		"AWS_ACCESS_KEY_ID=" + s3Key, "AWS_SECRET_ACCESS_KEY=" + s3Secret,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// open opens bucket name from this process, as the asset service does.
func (s *s3Store) open(t testing.TB, name string) *blob.Bucket {
	t.Helper()
	client := s3.NewFromConfig(aws.Config{
		Region:                     s3Region,
		Credentials:                credentials.NewStaticCredentialsProvider(s3Key, s3Secret, ""),
		BaseEndpoint:               &s.endpoint,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}, func(o *s3.Options) { o.UsePathStyle = true })
	b, err := s3blob.OpenBucket(t.Context(), client, name, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// noFollow is a client that shows a redirect instead of following it, so that the
// benchmark follows it as a browser does across origins: without the Authorization
// header.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// BenchmarkAssetThroughTheEdgeOnS3 is BenchmarkAssetThroughTheEdge on an S3-compatible
// bucket (gofakes3, memory backend, a process of its own, reached over loopback with
// signed requests): two serve topologies on the same server, one streaming downloads
// through the door and one redirecting them to the bucket
// (BACKPLANE_ASSET_DOWNLOAD_REDIRECT). Each iteration writes and reads the same 64 MiB
// directly (s3blob from this process: a plain PUT and GET) as the baseline, uploads
// through the door, downloads through the streaming door, and downloads through the
// redirecting door, following its 307 to the bucket. It reports every rate, each
// ratio to the direct one, the CPU each download costs the edge and the asset service,
// and how far their resident memory rose.
func BenchmarkAssetThroughTheEdgeOnS3(b *testing.B) {
	const size = 64 << 20
	store := startS3(b)
	streamed := startAssetMesh(b, store.env("streamed")...)
	redirected := startAssetMesh(b, append(store.env("redirected"), "BACKPLANE_ASSET_DOWNLOAD_REDIRECT=true")...)
	direct := store.open(b, "direct")
	data := make([]byte, size)
	_, err := io.ReadFull(newNoise(size), data)
	require.NoError(b, err)
	streamedID := streamed.upload(b, bytes.NewReader(data), size)
	redirectedID := redirected.upload(b, bytes.NewReader(data), size)
	buf := make([]byte, 1<<20)
	drain := func(r io.Reader) int64 { return drainWith(b, r, buf) }
	get := func(c *http.Client, rawURL, token string) *http.Response {
		req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, rawURL, nil)
		require.NoError(b, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		require.NoError(b, err)
		return resp
	}
	type door struct {
		took            time.Duration
		edgeCPU         time.Duration
		svcCPU          time.Duration
		edgeRSS, svcRSS int64
	}
	var up, upDirect, downDirect time.Duration
	var upEdge, upSvc int64
	var stream, redirect door
	timed := func(d *time.Duration, f func()) {
		start := time.Now()
		f()
		*d += time.Since(start)
	}
	measured := func(m *assetMesh, d *door, f func()) {
		edge, svc := watchRSS(b, m.edge), watchRSS(b, m.asset)
		edgeCPU, svcCPU := cpuTime(b, m.edge.cmd.Process.Pid), cpuTime(b, m.asset.cmd.Process.Pid)
		timed(&d.took, f)
		d.edgeCPU += cpuTime(b, m.edge.cmd.Process.Pid) - edgeCPU
		d.svcCPU += cpuTime(b, m.asset.cmd.Process.Pid) - svcCPU
		d.edgeRSS, d.svcRSS = max(d.edgeRSS, edge.growth(b)), max(d.svcRSS, svc.growth(b))
	}
	for b.Loop() {
		timed(&upDirect, func() {
			w, err := direct.NewWriter(b.Context(), "direct", nil)
			require.NoError(b, err)
			_, err = w.Write(data)
			require.NoError(b, err)
			require.NoError(b, w.Close())
		})
		edge, svc := watchRSS(b, streamed.edge), watchRSS(b, streamed.asset)
		timed(&up, func() { streamed.upload(b, bytes.NewReader(data), size) })
		upEdge, upSvc = max(upEdge, edge.growth(b)), max(upSvc, svc.growth(b))

		timed(&downDirect, func() {
			r, err := direct.NewReader(b.Context(), "direct", nil)
			require.NoError(b, err)
			require.Equal(b, int64(size), drain(r))
			require.NoError(b, r.Close())
		})
		measured(streamed, &stream, func() {
			resp := get(http.DefaultClient, streamed.base+"/v1/assets/"+streamedID+"/content", streamed.token)
			require.Equal(b, http.StatusOK, resp.StatusCode)
			require.Equal(b, int64(size), drain(resp.Body))
			require.NoError(b, resp.Body.Close())
		})
		measured(redirected, &redirect, func() {
			resp := get(noFollow, redirected.base+"/v1/assets/"+redirectedID+"/content", redirected.token)
			require.Equal(b, http.StatusTemporaryRedirect, resp.StatusCode)
			_, _ = io.Copy(io.Discard, resp.Body)
			require.NoError(b, resp.Body.Close())
			resp = get(http.DefaultClient, resp.Header.Get("Location"), "")
			require.Equal(b, http.StatusOK, resp.StatusCode)
			require.Equal(b, int64(size), drain(resp.Body))
			require.NoError(b, resp.Body.Close())
		})
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * size / 1e6 / d.Seconds() }
	perOp := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(mbps(up), "upload-MB/s")
	b.ReportMetric(mbps(upDirect), "direct-write-MB/s")
	b.ReportMetric(mbps(up)/mbps(upDirect), "upload-ratio")
	b.ReportMetric(mbps(downDirect), "direct-read-MB/s")
	b.ReportMetric(mbps(stream.took), "download-MB/s")
	b.ReportMetric(mbps(stream.took)/mbps(downDirect), "download-ratio")
	b.ReportMetric(mbps(redirect.took), "redirect-download-MB/s")
	b.ReportMetric(mbps(redirect.took)/mbps(downDirect), "redirect-download-ratio")
	b.ReportMetric(perOp(stream.edgeCPU), "download-edge-cpu-ms/op")
	b.ReportMetric(perOp(stream.svcCPU), "download-asset-cpu-ms/op")
	b.ReportMetric(perOp(redirect.edgeCPU), "redirect-edge-cpu-ms/op")
	b.ReportMetric(perOp(redirect.svcCPU), "redirect-asset-cpu-ms/op")
	b.ReportMetric(float64(upEdge>>20), "upload-edge-rss-MiB")
	b.ReportMetric(float64(upSvc>>20), "upload-asset-rss-MiB")
	b.ReportMetric(float64(stream.edgeRSS>>20), "download-edge-rss-MiB")
	b.ReportMetric(float64(stream.svcRSS>>20), "download-asset-rss-MiB")
	b.ReportMetric(float64(redirect.edgeRSS>>20), "redirect-edge-rss-MiB")
	b.ReportMetric(float64(redirect.svcRSS>>20), "redirect-asset-rss-MiB")
}

// With BACKPLANE_ASSET_DOWNLOAD_REDIRECT on an S3 bucket, the binary as shipped answers a
// REST download with a 307 to a signed URL of the bucket, which serves the bytes; the
// bucket in a process of its own, as the benchmark's.
func TestAssetDownloadRedirectsToAnS3Bucket(t *testing.T) {
	t.Parallel()
	store := startS3(t)
	m := startAssetMesh(t, append(store.env("redirected"), "BACKPLANE_ASSET_DOWNLOAD_REDIRECT=true", "BACKPLANE_ASSET_DOWNLOAD_REDIRECT_EXPIRY=30s")...)
	data := make([]byte, 3<<20)
	_, err := io.ReadFull(newNoise(int64(len(data))), data)
	require.NoError(t, err)
	id := m.upload(t, bytes.NewReader(data), int64(len(data)))

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, m.base+"/v1/assets/"+id+"/content", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+m.token)
	resp, err := noFollow.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, store.endpoint, loc.Scheme+"://"+loc.Host)
	require.Equal(t, "30", loc.Query().Get("X-Amz-Expires"))
	require.NotEmpty(t, loc.Query().Get("X-Amz-Signature"))

	resp, err = http.Get(loc.String()) //nolint:noctx // the test's own short call
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, bytes.Equal(data, body))
	require.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, `inline; filename="noise.bin"; filename*=UTF-8''noise.bin`, resp.Header.Get("Content-Disposition"))
}
