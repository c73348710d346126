package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Result is what a load run measured: the calls that succeeded, those that failed, and the
// latency of each successful call, sorted.
type Result struct {
	OK        int
	Failed    int
	FirstErr  error
	Elapsed   time.Duration
	latencies []time.Duration
}

// PerSecond is the rate of successful calls over the whole run.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of the successful calls'
// latencies, or 0 when none succeeded.
func (r Result) Percentile(p float64) time.Duration {
	return percentile(r.latencies, p)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// Nearest rank: the smallest value with at least p % of the values at or below it.
	rank := int(p/100*float64(len(sorted)) + 0.999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Drive runs call from workers goroutines, each calling again as soon as its previous
// call returns, until d has passed, and measures every call. A closed loop, as wrk's.
func Drive(ctx context.Context, workers int, d time.Duration, call func(context.Context) error) Result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	type tally struct {
		ok, failed int
		err        error
		lat        []time.Duration
	}
	tallies := make([]tally, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			t := &tallies[w]
			t.lat = make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				began := time.Now()
				err := call(ctx)
				took := time.Since(began)
				switch {
				case err == nil:
					t.ok++
					t.lat = append(t.lat, took)
				case ctx.Err() != nil || !time.Now().Before(deadline):
					// A call cut short by the end of the run is not counted either way. (gRPC
					// answers DEADLINE_EXCEEDED by its own clock, before ctx's timer fires.)
				default:
					t.failed++
					if t.err == nil {
						t.err = err
					}
				}
			}
		})
	}
	wg.Wait()
	r := Result{Elapsed: time.Since(start)}
	for _, t := range tallies {
		r.OK += t.ok
		r.Failed += t.failed
		if r.FirstErr == nil {
			r.FirstErr = t.err
		}
		r.latencies = append(r.latencies, t.lat...)
	}
	slices.Sort(r.latencies)
	return r
}

// HTTPClient is an HTTP/1.1 client keeping up to conns connections alive to one host.
func HTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		IdleConnTimeout:     time.Minute,
	}}
}

// GetOK returns a call that GETs url with a bearer token (when not empty) and succeeds
// only on 200 OK, reading the whole body so the connection is kept alive.
func GetOK(client *http.Client, url, token string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}
