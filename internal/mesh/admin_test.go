package mesh_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/mesh"
)

type fakeTelemetry struct{}

func (fakeTelemetry) TracerProvider() trace.TracerProvider      { return tracenoop.NewTracerProvider() }
func (fakeTelemetry) MeterProvider() metric.MeterProvider       { return noop.NewMeterProvider() }
func (fakeTelemetry) Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }
func (fakeTelemetry) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "metric_x 1\n") })
}

func readyz(t *testing.T, h http.Handler) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/readyz", nil))
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	return rec.Code, body
}

func TestReadinessFollowsChecksAndShutdown(t *testing.T) {
	t.Parallel()
	p, err := mesh.NewProcess(logging.New(io.Discard, logging.Options{}), fakeTelemetry{})
	require.NoError(t, err)
	var redisDown atomic.Bool
	p.AddCheck("redis", func(context.Context) error {
		if redisDown.Load() {
			return errors.New("dial tcp 127.0.0.1:6379: connection refused")
		}
		return nil
	})
	p.AddCheck("slow", func(ctx context.Context) error {
		select {
		case <-time.After(10 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	var limiterDown atomic.Bool
	p.AddReport("rate limiter", func(context.Context) error {
		if limiterDown.Load() {
			return errors.New("redis unreachable; an in-process limiter decides")
		}
		return nil
	})
	h := p.AdminHandler()

	code, body := readyz(t, h)
	require.Equal(t, http.StatusServiceUnavailable, code, "checks registered so far say nothing until everything has started")
	require.Equal(t, "starting", body["status"])
	p.MarkStarted()

	limiterDown.Store(true)
	code, body = readyz(t, h)
	require.Equal(t, http.StatusOK, code, "a degraded report does not make the process unready")
	require.Contains(t, body["degraded"].(map[string]any)["rate limiter"], "in-process")
	limiterDown.Store(false)

	code, body = readyz(t, h)
	require.Equal(t, http.StatusOK, code)
	require.ElementsMatch(t, []any{"redis", "slow"}, body["checks"])

	redisDown.Store(true)
	code, body = readyz(t, h)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body["failing"].(map[string]any)["redis"], "connection refused")

	redisDown.Store(false)
	code, _ = readyz(t, h)
	require.Equal(t, http.StatusOK, code)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/healthz", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	require.Contains(t, rec.Body.String(), "metric_x")

	p.Shutdown(t.Context(), time.Second)
	code, body = readyz(t, h)
	require.Equal(t, http.StatusServiceUnavailable, code, "a stopping process is not ready")
	require.Equal(t, "shutting down", body["status"])
}

func TestShutdownStopsInReverseOrder(t *testing.T) {
	t.Parallel()
	p, err := mesh.NewProcess(logging.New(io.Discard, logging.Options{}), fakeTelemetry{})
	require.NoError(t, err)
	var order []string
	p.OnStop("database", func(context.Context) error { order = append(order, "database"); return nil })
	p.OnStop("service", func(context.Context) error { order = append(order, "service"); return errors.New("ignored") })
	p.OnStop("gateway", func(context.Context) error { order = append(order, "gateway"); return nil })
	p.Shutdown(t.Context(), time.Second)
	require.Equal(t, []string{"gateway", "service", "database"}, order)
	p.Shutdown(t.Context(), time.Second)
	require.Len(t, order, 3, "a second shutdown does nothing")
}

func TestAdminPortServesProfilesOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		p, err := mesh.NewProcess(logging.New(io.Discard, logging.Options{}), fakeTelemetry{})
		require.NoError(t, err)
		p.SetProfiling(on)
		h := p.AdminHandler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/debug/pprof/heap?debug=1", nil))
		if !on {
			require.Equal(t, http.StatusNotFound, rec.Code, "profiles are off by default")
			continue
		}
		require.Equal(t, http.StatusOK, rec.Code)
		require.Contains(t, rec.Body.String(), "heap profile")
	}
}
