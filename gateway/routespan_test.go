package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/backplane/backplane/internal/telemetry"
)

// REST spans are named by route template and carry http.route; the duration metric is
// labelled by it and by nothing the client chose (the Host header); a request no route
// matches keeps the method alone.
func TestRESTTelemetryIsNamedByRoute(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(t.Context(), telemetry.Config{
		Pieces:         []string{"gateway"},
		Sampler:        sdktrace.AlwaysSample(),
		SpanProcessors: []sdktrace.SpanProcessor{spans},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })

	api := runtime.NewServeMux(runtime.WithMiddlewares(noteRESTRoute))
	ok := func(w http.ResponseWriter, _ *http.Request, _ map[string]string) { w.WriteHeader(http.StatusOK) }
	require.NoError(t, api.HandlePath(http.MethodGet, "/v1/users/{user_id}", ok))
	require.NoError(t, api.HandlePath(http.MethodPost, "/v1/sessions:refresh", ok))
	top := http.NewServeMux()
	top.Handle("/", api)
	top.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	// As in newREST: other handlers between otelhttp and the router.
	h := otelhttp.NewHandler(withRequestID(nameRoutes(top)), "gateway-http",
		otelhttp.WithTracerProvider(tel.TracerProvider()), otelhttp.WithMeterProvider(tel.MeterProvider()))

	for _, c := range []struct {
		method, target, host, span, route string
	}{
		{http.MethodGet, "/v1/users/0b9e4c1e", "a.example", "GET /v1/users/{user_id}", "/v1/users/{user_id}"},
		{http.MethodGet, "/v1/users/7d1f00aa", "b.example", "GET /v1/users/{user_id}", "/v1/users/{user_id}"},
		{http.MethodPost, "/v1/sessions:refresh", "c.example", "POST /v1/sessions:refresh", "/v1/sessions:refresh"},
		{http.MethodGet, "/openapi.json", "d.example", "GET /openapi.json", "/openapi.json"},
		{http.MethodGet, "/v1/nowhere", "e.example", "GET", ""},
	} {
		t.Run(c.target, func(t *testing.T) {
			spans.Reset()
			req := httptest.NewRequestWithContext(t.Context(), c.method, "http://"+c.host+c.target, nil)
			h.ServeHTTP(httptest.NewRecorder(), req)
			ended := spans.Ended()
			require.Len(t, ended, 1)
			require.Equal(t, c.span, ended[0].Name())
			route, found := "", false
			for _, a := range ended[0].Attributes() {
				if a.Key == "http.route" {
					route, found = a.Value.AsString(), true
				}
			}
			require.Equal(t, c.route != "", found, "http.route recorded")
			require.Equal(t, c.route, route)
		})
	}

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	metrics := string(body)
	require.Contains(t, metrics, `http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/v1/users/{user_id}"`)
	for _, host := range []string{"a.example", "b.example", "e.example", "0b9e4c1e"} {
		require.NotContains(t, metrics, host, "no client-controlled value labels a series")
	}
}
