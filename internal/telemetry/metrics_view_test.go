package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/telemetry"
)

// The histograms nobody reads are not recorded, while the ones dashboards use are.
func TestUnreadHistogramsAreNotServed(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.New(t.Context(), telemetry.Config{Pieces: []string{"gateway"}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	meter := tel.MeterProvider().Meter("test")
	for _, name := range []string{
		"db.client.connections.use_time", "db.client.connections.create_time",
		"http.server.request.body.size", "rpc.server.request.size", "db.client.operation.duration",
	} {
		h, err := meter.Float64Histogram(name)
		require.NoError(t, err)
		h.Record(t.Context(), 1)
	}

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	scrape := string(body)
	require.Contains(t, scrape, "db_client_operation_duration_bucket", "a histogram that is read stays")
	for _, dropped := range []string{"db_client_connections_use_time", "db_client_connections_create_time", "http_server_request_body_size", "rpc_server_request_size"} {
		require.NotContains(t, scrape, dropped)
	}
}
