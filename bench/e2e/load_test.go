package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentileIsNearestRank(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, percentile(d, 50))
	require.Equal(t, 99*time.Millisecond, percentile(d, 99))
	require.Equal(t, 100*time.Millisecond, percentile(d, 100))
	require.Equal(t, 1*time.Millisecond, percentile(d, 0.1))
	require.Equal(t, 7*time.Millisecond, percentile([]time.Duration{7 * time.Millisecond}, 99))
	require.Zero(t, percentile(nil, 50))
}

// Every request the server answered is counted once, a refusal as a failure, and the
// load is spread over exactly as many kept-alive connections as workers.
func TestDriveCountsEveryCallOverKeptAliveConnections(t *testing.T) {
	t.Parallel()
	var served, refused atomic.Int64
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			refused.Add(1)
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		served.Add(1)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	client := HTTPClient(4)
	r := Drive(context.Background(), 4, 300*time.Millisecond, GetOK(client, srv.URL, "good"))
	require.Positive(t, r.OK)
	// A request cut short at the deadline may reach the server uncounted, one per worker.
	require.InDelta(t, served.Load(), r.OK, 4)
	require.Zero(t, r.Failed)
	require.NoError(t, r.FirstErr)
	require.LessOrEqual(t, conns.Load(), int64(4), "connections are kept alive, not one per request")
	require.LessOrEqual(t, r.Percentile(50), r.Percentile(99))
	require.Positive(t, r.PerSecond())

	bad := Drive(context.Background(), 2, 100*time.Millisecond, GetOK(client, srv.URL, "bad"))
	require.Zero(t, bad.OK)
	require.Positive(t, bad.Failed)
	require.ErrorContains(t, bad.FirstErr, "401")
	require.Zero(t, bad.Percentile(50), "failed calls have no latency")
	require.InDelta(t, refused.Load(), bad.Failed, 2)
}

func TestMedianIsTheMiddleRound(t *testing.T) {
	t.Parallel()
	require.InDelta(t, 0.5, median([]float64{0.9, 0.1, 0.5}), 1e-9)
	require.InDelta(t, 0.45, median([]float64{0.6, 0.3, 0.4, 0.5}), 1e-9)
	require.InDelta(t, 0.7, median([]float64{0.7}), 1e-9)
	require.Zero(t, median(nil))
}
