package gateway_test

import (
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

// heapPeak samples the process's heap (live and not yet collected objects) until stop is
// called, and returns the highest it saw.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
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

func heapNow() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
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
// without holding the file: the heap grows by far less than the file. It runs before
// the package's parallel tests, alone, so that the heap it watches is its own.
func TestRESTUploadOfAGibibyteStaysSmall(t *testing.T) { //nolint:paralleltest // measures the process's heap: must run alone
	const size = 1 << 30
	h := assetSetup(t, 2<<30)
	token := h.token(t, uuid.New())
	base := heapNow()
	stop := heapPeak()
	h.put(t, token, size)
	peak := stop()
	t.Logf("1 GiB upload: heap %d MiB before, peak %d MiB", base>>20, peak>>20)
	require.Less(t, peak, base+64<<20, "the heap grew by %d MiB", (peak-base)>>20)
}

// BenchmarkAssetUpload is a 64 MiB upload through the REST door (edge and service in
// this process, a directory bucket) beside the baseline: the same bytes written to the
// same kind of bucket directly.
func BenchmarkAssetUpload(b *testing.B) {
	const size = 64 << 20
	b.Run("direct blob write", func(b *testing.B) {
		bucket, err := fileblob.OpenBucket(b.TempDir(), &fileblob.Options{NoTempDir: true})
		require.NoError(b, err)
		defer func() { _ = bucket.Close() }()
		b.SetBytes(size)
		stop := heapPeak()
		for i := 0; b.Loop(); i++ {
			w, err := bucket.NewWriter(b.Context(), fmt.Sprint("k", i), nil)
			require.NoError(b, err)
			_, err = io.Copy(w, newNoise(size))
			require.NoError(b, err)
			require.NoError(b, w.Close())
		}
		b.ReportMetric(float64(stop()>>20), "peak-heap-MiB")
	})
	b.Run("REST door", func(b *testing.B) {
		h := assetSetup(b, 1<<30)
		token := h.token(b, uuid.New())
		b.SetBytes(size)
		stop := heapPeak()
		for b.Loop() {
			h.put(b, token, size)
		}
		b.ReportMetric(float64(stop()>>20), "peak-heap-MiB")
	})
}

// BenchmarkAssetDownload is a 64 MiB download through the REST door beside the
// baseline: reading the same bytes from the same kind of bucket directly.
func BenchmarkAssetDownload(b *testing.B) {
	const size = 64 << 20
	b.Run("direct blob read", func(b *testing.B) {
		bucket, err := fileblob.OpenBucket(b.TempDir(), &fileblob.Options{NoTempDir: true})
		require.NoError(b, err)
		defer func() { _ = bucket.Close() }()
		w, err := bucket.NewWriter(b.Context(), "k", nil)
		require.NoError(b, err)
		_, err = io.Copy(w, newNoise(size))
		require.NoError(b, err)
		require.NoError(b, w.Close())
		b.SetBytes(size)
		stop := heapPeak()
		for b.Loop() {
			r, err := bucket.NewReader(b.Context(), "k", nil)
			require.NoError(b, err)
			_, err = io.Copy(io.Discard, r)
			require.NoError(b, err)
			require.NoError(b, r.Close())
		}
		b.ReportMetric(float64(stop()>>20), "peak-heap-MiB")
	})
	b.Run("REST door", func(b *testing.B) {
		h := assetSetup(b, 1<<30)
		token := h.token(b, uuid.New())
		id := h.create(b, token, "noise.bin", "application/octet-stream", size)
		resp, body := h.call(b, token, "PUT", "/v1/assets/"+id+"/content", newNoise(size), nil)
		require.Equal(b, http.StatusOK, resp.StatusCode, string(body))
		b.SetBytes(size)
		stop := heapPeak()
		for b.Loop() {
			req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, h.rest.URL+"/v1/assets/"+id+"/content", nil)
			require.NoError(b, err)
			req.Header.Set("Authorization", "Bearer "+token)
			r, err := http.DefaultClient.Do(req)
			require.NoError(b, err)
			n, err := io.Copy(io.Discard, r.Body)
			require.NoError(b, err)
			require.NoError(b, r.Body.Close())
			require.Equal(b, int64(size), n)
		}
		b.ReportMetric(float64(stop()>>20), "peak-heap-MiB")
	})
}
