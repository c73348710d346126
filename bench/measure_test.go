package bench_test

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// result is what one side of a comparison measured.
type result struct {
	rps      float64
	p50, p99 time.Duration
}

// measure runs call n times from `concurrency` goroutines and reports the rate and the
// latency percentiles. Any error fails the benchmark: a fast error is not a result.
func measure(b *testing.B, n, concurrency int, call func() error) result {
	b.Helper()
	lat := make([]time.Duration, n)
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= n {
					return
				}
				t0 := time.Now()
				if err := call(); err != nil {
					errs <- err
					return
				}
				lat[k] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	return result{
		rps: float64(n) / elapsed.Seconds(),
		p50: lat[n/2],
		p99: lat[n*99/100],
	}
}

// compare measures the baseline and the subject alternately, several rounds each, so
// that noise from the shared machine falls on both, and reports both and their ratios.
// Throughput is measured with `concurrency` callers, which saturates the machine;
// latency with one caller at a time, so that it is the path's latency and not the queue
// in front of a busy CPU.
func compare(b *testing.B, n, concurrency int, baseline, subject func() error) {
	b.Helper()
	const rounds = 3
	var baseTput, subjTput, baseLat, subjLat []result
	for range b.N {
		for range rounds {
			baseTput = append(baseTput, measure(b, n, concurrency, baseline))
			subjTput = append(subjTput, measure(b, n, concurrency, subject))
			baseLat = append(baseLat, measure(b, n/4, 1, baseline))
			subjLat = append(subjLat, measure(b, n/4, 1, subject))
		}
	}
	bt, st := median(baseTput), median(subjTput)
	bl, sl := median(baseLat), median(subjLat)
	b.ReportMetric(bt.rps, "baseline-req/s")
	b.ReportMetric(st.rps, "req/s")
	b.ReportMetric(st.rps/bt.rps, "throughput-ratio")
	b.ReportMetric(float64(bl.p50.Microseconds()), "baseline-p50-µs")
	b.ReportMetric(float64(sl.p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(sl.p50)/float64(bl.p50), "p50-ratio")
	b.ReportMetric(float64(sl.p99.Microseconds()), "p99-µs")
}

func median(rs []result) result {
	rps := make([]float64, len(rs))
	p50 := make([]time.Duration, len(rs))
	p99 := make([]time.Duration, len(rs))
	for i, r := range rs {
		rps[i], p50[i], p99[i] = r.rps, r.p50, r.p99
	}
	slices.Sort(rps)
	slices.Sort(p50)
	slices.Sort(p99)
	m := len(rs) / 2
	return result{rps: rps[m], p50: p50[m], p99: p99[m]}
}
