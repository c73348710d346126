package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob/fileblob"

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/services"
)

// assetCatalog lets the free plan store and upload files of several GiB, so that the
// measurements below are limited by nothing but the machinery.
const assetCatalog = `
meters:
  - {name: api_calls, display_name: API calls, unit: calls, aggregation: SUM}
  - {name: storage_bytes, display_name: Storage, unit: bytes, aggregation: MAX}
  - {name: emails_sent, display_name: Emails sent, unit: emails, aggregation: COUNT}
plans:
  - id: free
    display_name: Free
    rate_limit_per_minute: 600
    max_upload_bytes: 4294967296
`

// assetMesh is the serve topology, every piece a process of its own as the Helm chart
// runs them: the edge (gateway) reaches the asset service over gRPC.
type assetMesh struct {
	base    string // the edge's REST address
	edge    *process
	asset   *process
	dataDir string            // the asset piece's data dir; its bucket is dataDir/assets
	token   string            // a signed-up user's access token
	admins  map[string]string // each piece's admin address
}

func startAssetMesh(t testing.TB, extra ...string) *assetMesh {
	t.Helper()
	addrs := map[string]string{}
	for _, s := range services.Names() {
		addrs[s] = freeAddr(t)
	}
	dbURL := dbtest.NewDatabase(t)
	migrate := exec.CommandContext(t.Context(), binary, "migrate")
	migrate.Env = append(os.Environ(), "BACKPLANE_DATABASE_URL="+dbURL)
	out, err := migrate.CombinedOutput()
	require.NoError(t, err, "%s", out)
	catalog := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(catalog, []byte(assetCatalog), 0o600))
	m := &assetMesh{dataDir: t.TempDir(), admins: map[string]string{}}
	common := []string{
		"BACKPLANE_MIGRATE_ON_START=false",
		"BACKPLANE_DATABASE_URL=" + dbURL,
		"BACKPLANE_REDIS_URL=" + redistest.URL(),
		"BACKPLANE_SERVICE_TOKEN_SECRET=test-secret-test-secret-test-secret-0123",
		"BACKPLANE_KEY_ENCRYPTION_KEY=dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMDEyMzQ1Njc=",
		"BACKPLANE_PUBLIC_URL=https://app.backplane.test",
		"BACKPLANE_DATA_DIR=" + m.dataDir,
		"BACKPLANE_CATALOG_FILE=" + catalog,
		"BACKPLANE_ASSET_MAX_BYTES=5368709120",
		"BACKPLANE_LOG_FORMAT=text",
		// The test's account is signed in at sign-up, without the emailed link.
		"BACKPLANE_SIGNUP_MODE=instant",
	}
	common = append(common, extra...)
	for _, s := range services.Names() {
		common = append(common, fmt.Sprintf("BACKPLANE_%s_ADDR=%s", strings.ToUpper(s), addrs[s]))
	}
	type piece struct {
		p     *process
		admin string
	}
	var pieces []piece
	start := func(name string, env ...string) *process {
		admin := freeAddr(t)
		p := startProcess(t, append(append(append([]string{}, common...), env...), "BACKPLANE_ADMIN_ADDR="+admin), "serve", name)
		pieces = append(pieces, piece{p, admin})
		m.admins[name] = admin
		return p
	}
	for _, s := range services.Names() {
		p := start(s, "BACKPLANE_GRPC_ADDR="+addrs[s])
		if s == "asset" {
			m.asset = p
		}
	}
	httpAddr := freeAddr(t)
	m.edge = start("gateway", "BACKPLANE_HTTP_ADDR="+httpAddr, "BACKPLANE_GRPC_ADDR="+freeAddr(t))
	for _, p := range pieces {
		p.p.waitReady(t, p.admin)
	}
	m.base = "http://" + httpAddr
	body, err := json.Marshal(map[string]string{
		"email": fmt.Sprintf("files+%d@example.com", time.Now().UnixNano()), "password": "correct horse battery", "displayName": "Files",
	})
	require.NoError(t, err)
	resp, err := http.Post(m.base+"/v1/auth/signup", "application/json", bytes.NewReader(body)) //nolint:noctx // the test's own short call
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var signedUp struct {
		AccessToken string `json:"accessToken"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&signedUp))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	m.token = signedUp.AccessToken
	return m
}

// do makes one REST call as the mesh's user and returns the status and body.
func (m *assetMesh) do(t testing.TB, method, path string, body io.Reader, size int64) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, m.base+path, body)
	require.NoError(t, err)
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+m.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

// upload declares a file of size bytes and PUTs body as its bytes.
func (m *assetMesh) upload(t testing.TB, body io.Reader, size int64) string {
	t.Helper()
	code, out := m.do(t, http.MethodPost, "/v1/assets", strings.NewReader(
		fmt.Sprintf(`{"filename":"noise.bin","contentType":"application/octet-stream","sizeBytes":"%d"}`, size)), -1)
	require.Equal(t, http.StatusOK, code, "%s", out)
	var created struct{ Asset struct{ ID string } }
	require.NoError(t, json.Unmarshal(out, &created))
	code, out = m.do(t, http.MethodPut, "/v1/assets/"+created.Asset.ID+"/content", body, size)
	require.Equal(t, http.StatusOK, code, "%s", out)
	return created.Asset.ID
}

// noise is n pseudo-random bytes that are never all held at once.
type noise struct {
	left int64
	rng  *rand.ChaCha8
}

func newNoise(n int64) *noise { return &noise{left: n, rng: rand.NewChaCha8([32]byte{7})} }

func (r *noise) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.left)]
	_, _ = r.rng.Read(p)
	r.left -= int64(len(p))
	return len(p), nil
}

// procStatus reads one field of /proc/<pid>/status, in bytes.
func procStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// rssWatch measures how far a process's resident memory rises above where it stood
// when the watch began: the kernel's high-water mark (VmHWM), reset at the start by
// writing 5 to /proc/<pid>/clear_refs, and VmRSS sampled every 5 ms, whichever is
// higher. A kernel that refuses the reset leaves the samples alone to say it.
type rssWatch struct {
	pid   int
	base  int64
	reset bool
	peak  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func watchRSS(t testing.TB, p *process) *rssWatch {
	t.Helper()
	w := &rssWatch{pid: p.cmd.Process.Pid, stop: make(chan struct{})}
	w.reset = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", w.pid), []byte("5"), 0) == nil
	w.base = procStatus(t, w.pid, "VmRSS")
	w.peak.Store(w.base)
	w.wg.Go(func() {
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.pid))
			if err != nil {
				continue
			}
			for line := range strings.SplitSeq(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
					if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil && kb<<10 > w.peak.Load() {
						w.peak.Store(kb << 10)
					}
				}
			}
		}
	})
	return w
}

// growth ends the watch and returns the rise in bytes.
func (w *rssWatch) growth(t testing.TB) int64 {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	peak := w.peak.Load()
	if w.reset {
		peak = max(peak, procStatus(t, w.pid, "VmHWM"))
	}
	return peak - w.base
}

// cpuTime is the CPU time (user and system) a process has used so far, from
// /proc/<pid>/stat, in the kernel's 10 ms ticks.
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// The fields after the command name, which is in parentheses and may hold spaces:
	// utime and stime are the 12th and 13th.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	require.NoError(t, err)
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	require.NoError(t, err)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// selfCPU is the CPU time this process has used so far.
func selfCPU(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Uploading a 1 GiB file through the REST door of the serve topology grows neither the
// edge's process nor the asset service's by more than 64 MiB: the bytes stream through
// both in chunks, never held whole.
func TestAGibibyteUploadStaysSmallInTheEdgeAndTheService(t *testing.T) {
	t.Parallel()
	const size = 1 << 30
	m := startAssetMesh(t)
	m.upload(t, newNoise(1<<20), 1<<20) // warm: connections open, code paths paged in
	edge, svc := watchRSS(t, m.edge), watchRSS(t, m.asset)
	started := time.Now()
	m.upload(t, newNoise(size), size)
	took := time.Since(started)
	e, s := edge.growth(t), svc.growth(t)
	t.Logf("1 GiB upload in %v (%.0f MB/s); resident memory grew by %d MiB in the edge, %d MiB in the asset service (high-water mark reset: %v)",
		took.Round(time.Millisecond), size/1e6/took.Seconds(), e>>20, s>>20, edge.reset)
	require.Less(t, e, int64(64<<20), "the edge grew by %d MiB", e>>20)
	require.Less(t, s, int64(64<<20), "the asset service grew by %d MiB", s>>20)
}

// BenchmarkAssetThroughTheEdge is the product's own figure: a 64 MiB upload and
// download through the REST door of the serve topology (the edge and the asset service
// separate processes, with default telemetry, over gRPC on loopback; a directory
// bucket), each beside its baseline in the same iteration: the same bytes written to
// and read from a directory bucket on the same disk by this process directly. It
// reports both rates, their ratio, and how far the edge's and the service's resident
// memory rose during the REST transfers.
func BenchmarkAssetThroughTheEdge(b *testing.B) {
	const size = 64 << 20
	m := startAssetMesh(b)
	data := make([]byte, size)
	_, err := io.ReadFull(newNoise(size), data)
	require.NoError(b, err)
	bucket, err := fileblob.OpenBucket(b.TempDir(), &fileblob.Options{NoTempDir: true})
	require.NoError(b, err)
	defer func() { _ = bucket.Close() }()
	id := m.upload(b, bytes.NewReader(data), size)
	// Both readers read with the same 1 MiB buffer, as a browser's network stack would.
	buf := make([]byte, 1<<20)
	drain := func(r io.Reader) int64 { return drainWith(b, r, buf) }
	var up, upDirect, down, downDirect time.Duration
	var upEdge, upSvc, downEdge, downSvc int64
	// The CPU time each download costs the edge and the asset service, and the direct
	// read this process: what the machine spends, whatever else shares it.
	var downEdgeCPU, downSvcCPU, downDirectCPU time.Duration
	timed := func(d *time.Duration, f func()) {
		start := time.Now()
		f()
		*d += time.Since(start)
	}
	for i := 0; b.Loop(); i++ {
		timed(&upDirect, func() {
			w, err := bucket.NewWriter(b.Context(), fmt.Sprint("k", i), nil)
			require.NoError(b, err)
			_, err = w.Write(data)
			require.NoError(b, err)
			require.NoError(b, w.Close())
		})
		edge, svc := watchRSS(b, m.edge), watchRSS(b, m.asset)
		timed(&up, func() { m.upload(b, bytes.NewReader(data), size) })
		upEdge, upSvc = max(upEdge, edge.growth(b)), max(upSvc, svc.growth(b))

		self := selfCPU(b)
		timed(&downDirect, func() {
			r, err := bucket.NewReader(b.Context(), fmt.Sprint("k", i), nil)
			require.NoError(b, err)
			require.Equal(b, int64(size), drain(r))
			require.NoError(b, r.Close())
		})
		downDirectCPU += selfCPU(b) - self
		edge, svc = watchRSS(b, m.edge), watchRSS(b, m.asset)
		edgeCPU, svcCPU := cpuTime(b, m.edge.cmd.Process.Pid), cpuTime(b, m.asset.cmd.Process.Pid)
		timed(&down, func() {
			req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, m.base+"/v1/assets/"+id+"/content", nil)
			require.NoError(b, err)
			req.Header.Set("Authorization", "Bearer "+m.token)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(b, err)
			require.Equal(b, int64(size), drain(resp.Body))
			require.NoError(b, resp.Body.Close())
		})
		downEdgeCPU += cpuTime(b, m.edge.cmd.Process.Pid) - edgeCPU
		downSvcCPU += cpuTime(b, m.asset.cmd.Process.Pid) - svcCPU
		downEdge, downSvc = max(downEdge, edge.growth(b)), max(downSvc, svc.growth(b))
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * size / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(up), "upload-MB/s")
	b.ReportMetric(mbps(upDirect), "direct-write-MB/s")
	b.ReportMetric(mbps(up)/mbps(upDirect), "upload-ratio")
	b.ReportMetric(mbps(down), "download-MB/s")
	b.ReportMetric(mbps(downDirect), "direct-read-MB/s")
	b.ReportMetric(mbps(down)/mbps(downDirect), "download-ratio")
	perOp := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(perOp(downEdgeCPU), "download-edge-cpu-ms/op")
	b.ReportMetric(perOp(downSvcCPU), "download-asset-cpu-ms/op")
	b.ReportMetric(perOp(downDirectCPU), "direct-read-cpu-ms/op")
	b.ReportMetric(float64(upEdge>>20), "upload-edge-rss-MiB")
	b.ReportMetric(float64(upSvc>>20), "upload-asset-rss-MiB")
	b.ReportMetric(float64(downEdge>>20), "download-edge-rss-MiB")
	b.ReportMetric(float64(downSvc>>20), "download-asset-rss-MiB")
}

// drainWith reads r to its end through buf, as a client's network stack would, and
// returns how many bytes it read.
func drainWith(b testing.TB, r io.Reader, buf []byte) int64 {
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n
		}
		require.NoError(b, err)
	}
}
