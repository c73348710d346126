package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob/fileblob"
)

// noise is a reader of n pseudo-random bytes that holds none of them: a file of any
// size without the memory to keep it.
type noise struct {
	left int64
	rng  *rand.ChaCha8
}

func newNoise(n int64) *noise {
	return &noise{left: n, rng: rand.NewChaCha8([32]byte{1})}
}

func (r *noise) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.left)]
	_, _ = r.rng.Read(p)
	r.left -= int64(len(p))
	return len(p), nil
}

// liveHeapPeak samples, until stop is called, the live heap the collector found at the
// end of each cycle, and returns the highest it saw. Live, not all heap objects: those
// include garbage the collector has not reached yet, up to its goal of twice the live
// heap (GOGC), so how high they rise says when the collector ran (the race detector,
// the machine's load), not what the upload holds.
func liveHeapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

// liveHeapNow is the live heap after a collection.
func liveHeapNow() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// put uploads n bytes of noise as a declared asset through the REST door.
func (h *assetHarness) put(t testing.TB, token string, n int64) {
	t.Helper()
	id := h.create(t, token, "noise.bin", "application/octet-stream", int(n))
	resp, b := h.call(t, token, "PUT", "/v1/assets/"+id+"/content", newNoise(n), http.Header{"Content-Type": {"application/octet-stream"}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
}

// A 1 GiB upload streams through the edge and the service (both in this process)
// without holding the file: the live heap grows by far less than the file. It runs
// before the package's parallel tests, alone, so that the heap it watches is its own.
// The process's footprint, garbage included, is cmd/backplane's tests' business: they
// watch the real binaries' resident memory.
func TestRESTUploadOfAGibibyteStaysSmall(t *testing.T) { //nolint:paralleltest // measures the process's heap: must run alone
	const size = 1 << 30
	h := assetSetup(t, 2<<30)
	token := h.token(t, uuid.New())
	base := liveHeapNow()
	stop := liveHeapPeak()
	h.put(t, token, size)
	peak := stop()
	t.Logf("1 GiB upload: live heap %d MiB before, peak %d MiB", base>>20, peak>>20)
	require.Less(t, peak, base+64<<20, "the live heap grew by %d MiB", (peak-base)>>20)
}

// assetBenchSize is the file the benchmarks move: 64 MiB, as the figures are.
const assetBenchSize = 64 << 20

// benchFile is assetBenchSize bytes of noise held in memory, so that producing them costs
// neither side anything.
func benchFile(b *testing.B) []byte {
	b.Helper()
	data := make([]byte, assetBenchSize)
	_, err := io.ReadFull(newNoise(assetBenchSize), data)
	require.NoError(b, err)
	return data
}

// pairTimer times a path and its baseline alternately, one of each per iteration, so
// that both see the same load on a shared machine, and reports both rates and their
// ratio.
type pairTimer struct {
	path, baseline time.Duration
	n              int
}

func (p *pairTimer) time(d *time.Duration, f func()) {
	start := time.Now()
	f()
	*d += time.Since(start)
}

func (p *pairTimer) report(b *testing.B, unit string) {
	mbps := func(d time.Duration) float64 { return float64(p.n) * assetBenchSize / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(p.path), unit+"-MB/s")
	b.ReportMetric(mbps(p.baseline), "direct-MB/s")
	b.ReportMetric(mbps(p.path)/mbps(p.baseline), "ratio")
}

// BenchmarkAssetUpload is a 64 MiB upload through the REST door (the edge in this
// process, the asset service behind it over loopback gRPC, as in `backplane dev`, a
// directory bucket) beside the baseline, alternated: the same bytes written to a
// directory bucket directly. The product's own figure, from the real binary, is
// cmd/backplane's BenchmarkAssetThroughTheEdge.
func BenchmarkAssetUpload(b *testing.B) {
	data := benchFile(b)
	bucket, err := fileblob.OpenBucket(b.TempDir(), &fileblob.Options{NoTempDir: true})
	require.NoError(b, err)
	defer func() { _ = bucket.Close() }()
	h := assetSetup(b, 1<<30)
	token := h.token(b, uuid.New())
	var p pairTimer
	for i := 0; b.Loop(); i++ {
		p.time(&p.baseline, func() {
			w, err := bucket.NewWriter(b.Context(), fmt.Sprint("k", i), nil)
			require.NoError(b, err)
			_, err = io.Copy(w, bytes.NewReader(data))
			require.NoError(b, err)
			require.NoError(b, w.Close())
		})
		p.time(&p.path, func() {
			id := h.create(b, token, "noise.bin", "application/octet-stream", len(data))
			resp, body := h.call(b, token, "PUT", "/v1/assets/"+id+"/content", bytes.NewReader(data), nil)
			require.Equal(b, http.StatusOK, resp.StatusCode, string(body))
		})
		p.n++
	}
	p.report(b, "rest")
}

// BenchmarkAssetDownload is a 64 MiB download through the REST door beside the
// baseline, alternated: reading the same bytes from a directory bucket directly.
func BenchmarkAssetDownload(b *testing.B) {
	data := benchFile(b)
	bucket, err := fileblob.OpenBucket(b.TempDir(), &fileblob.Options{NoTempDir: true})
	require.NoError(b, err)
	defer func() { _ = bucket.Close() }()
	require.NoError(b, bucket.WriteAll(b.Context(), "k", data, nil))
	h := assetSetup(b, 1<<30)
	token := h.token(b, uuid.New())
	id := h.create(b, token, "noise.bin", "application/octet-stream", len(data))
	resp, body := h.call(b, token, "PUT", "/v1/assets/"+id+"/content", bytes.NewReader(data), nil)
	require.Equal(b, http.StatusOK, resp.StatusCode, string(body))
	var p pairTimer
	for b.Loop() {
		p.time(&p.baseline, func() {
			r, err := bucket.NewReader(b.Context(), "k", nil)
			require.NoError(b, err)
			_, err = io.Copy(io.Discard, r)
			require.NoError(b, err)
			require.NoError(b, r.Close())
		})
		p.time(&p.path, func() {
			req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, h.rest.URL+"/v1/assets/"+id+"/content", nil)
			require.NoError(b, err)
			req.Header.Set("Authorization", "Bearer "+token)
			r, err := http.DefaultClient.Do(req)
			require.NoError(b, err)
			n, err := io.Copy(io.Discard, r.Body)
			require.NoError(b, err)
			require.NoError(b, r.Body.Close())
			require.Equal(b, int64(assetBenchSize), n)
		})
		p.n++
	}
	p.report(b, "rest")
}
