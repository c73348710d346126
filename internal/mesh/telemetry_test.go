package mesh_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/mesh"
	"github.com/backplane/backplane/internal/telemetry"
)

// Probes are not traced: neither the admin requests nor what /readyz does to answer
// them (its checks query PostgreSQL, Redis and the other services), even under a
// sampler that keeps everything.
func TestAdminRequestsAndReadinessChecksAreNotTraced(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(t.Context(), telemetry.Config{
		Pieces:         []string{"gateway"},
		Sampler:        sdktrace.AlwaysSample(),
		SpanProcessors: []sdktrace.SpanProcessor{spans},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })

	p, err := mesh.NewProcess(logging.New(io.Discard, logging.Options{}), tel)
	require.NoError(t, err)
	checked := false
	p.AddCheck("postgres", func(ctx context.Context) error {
		_, span := tel.TracerProvider().Tracer("test").Start(ctx, "SELECT 1")
		span.End()
		checked = true
		return nil
	})
	p.MarkStarted()

	h := p.AdminHandler()
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
		require.Equal(t, http.StatusOK, rec.Code, path)
	}
	require.True(t, checked, "/readyz ran its check")
	require.Empty(t, spans.Ended())
}
