package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backplane/backplane/internal/dbtest"
)

// benchCatalog sets no quota, so that nothing in the benchmark is refused.
const benchCatalog = `
meters:
  - {name: api_calls, display_name: API calls, unit: calls, aggregation: SUM}
  - {name: widgets, display_name: Widgets, unit: widgets, aggregation: SUM}
plans:
  - {id: free, display_name: Free, rate_limit_per_minute: 600}
`

// BenchmarkRecordUsageThroughREST: POST /v1/usage:record on a running `backplane dev`,
// through the whole edge (token and session checked, validation, rate limit, the call
// counted on api_calls) to the usage service, which claims the key, writes the event and
// adds it to its total in one statement; beside GET /v1/users/me on the same process
// (the same edge and one PostgreSQL read in auth), alternated three rounds. Throughput
// with 8 callers; p50 with one.
func BenchmarkRecordUsageThroughREST(b *testing.B) {
	catalog := filepath.Join(b.TempDir(), "catalog.yaml")
	if err := os.WriteFile(catalog, []byte(benchCatalog), 0o600); err != nil {
		b.Fatal(err)
	}
	p := startDev(b, dbtest.NewDatabase(b), "BACKPLANE_CATALOG_FILE="+catalog, "BACKPLANE_SIGNUP_MODE=instant",
		"BACKPLANE_RATE_LIMIT_AUTHENTICATED=1000000/s")
	defer p.stop(b)
	base := "http://" + p.http
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	do := func(method, path, token string, body any) (map[string]any, error) {
		var r io.Reader
		if body != nil {
			raw, err := json.Marshal(body)
			if err != nil {
				return nil, err
			}
			r = bytes.NewReader(raw)
		}
		req, err := http.NewRequestWithContext(b.Context(), method, base+path, r)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer func() { _ = resp.Body.Close() }()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, raw)
		}
		out := map[string]any{}
		return out, json.Unmarshal(raw, &out)
	}
	signedUp, err := do(http.MethodPost, "/v1/auth/signup", "", map[string]string{
		"email": fmt.Sprintf("bench+%d@example.com", time.Now().UnixNano()), "password": "correct horse battery", "displayName": "Bench",
	})
	if err != nil {
		b.Fatal(err)
	}
	token := signedUp["accessToken"].(string)
	var seq atomic.Int64
	record := func() error {
		_, err := do(http.MethodPost, "/v1/usage:record", token, map[string]any{
			"meter": "widgets", "quantity": 1, "idempotencyKey": fmt.Sprint("k", seq.Add(1)),
		})
		return err
	}
	me := func() error { _, err := do(http.MethodGet, "/v1/users/me", token, nil); return err }

	type result struct {
		rps float64
		p50 time.Duration
	}
	measure := func(n, callers int, call func() error) result {
		lat := make([]time.Duration, n)
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		start := time.Now()
		for range callers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					t0 := time.Now()
					if err := call(); err != nil {
						errs <- err
						return
					}
					lat[i] = time.Since(t0)
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
		return result{rps: float64(n) / elapsed.Seconds(), p50: lat[n/2]}
	}
	median := func(rs []result) result {
		rps := make([]float64, len(rs))
		p50 := make([]time.Duration, len(rs))
		for i, r := range rs {
			rps[i], p50[i] = r.rps, r.p50
		}
		slices.Sort(rps)
		slices.Sort(p50)
		return result{rps: rps[len(rs)/2], p50: p50[len(rs)/2]}
	}
	measure(200, 8, record) // warm: the entitlements cached, connections open
	var recT, meT, recL, meL []result
	for range b.N {
		for range 3 {
			recT = append(recT, measure(2000, 8, record))
			meT = append(meT, measure(2000, 8, me))
			recL = append(recL, measure(300, 1, record))
			meL = append(meL, measure(300, 1, me))
		}
	}
	rt, mt, rl, ml := median(recT), median(meT), median(recL), median(meL)
	b.ReportMetric(rt.rps, "req/s")
	b.ReportMetric(mt.rps, "baseline-req/s")
	b.ReportMetric(rt.rps/mt.rps, "throughput-ratio")
	b.ReportMetric(float64(rl.p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(ml.p50.Microseconds()), "baseline-p50-µs")
	b.ReportMetric(float64(rl.p50)/float64(ml.p50), "p50-ratio")
}
