package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/backplane/backplane/internal/clientip"
	"github.com/backplane/backplane/internal/requestid"
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
	resolver, err := clientip.NewResolver(nil)
	require.NoError(t, err)

	api := runtime.NewServeMux(runtime.WithMiddlewares(noteRESTRoute))
	ok := func(w http.ResponseWriter, _ *http.Request, _ map[string]string) { w.WriteHeader(http.StatusOK) }
	require.NoError(t, api.HandlePath(http.MethodGet, "/v1/users/{user_id}", ok))
	require.NoError(t, api.HandlePath(http.MethodPost, "/v1/sessions:refresh", ok))
	top := http.NewServeMux()
	top.Handle("/", api)
	top.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	// As in newREST: other handlers between otelhttp and the router.
	h := otelhttp.NewHandler(withRequestState(resolver, nameRoutes(top)), "gateway-http",
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

// The REST door's own layers share the request withRequestState made: none copies it
// to add a context value of its own, and what each learns reaches the others.
func TestRESTLayersShareOneCopyOfTheRequest(t *testing.T) {
	t.Parallel()
	resolver, err := clientip.NewResolver(nil)
	require.NoError(t, err)
	var arrived, served *http.Request
	var readErr error
	final := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served = r
		_, readErr = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusOK)
	})
	top := http.NewServeMux()
	top.Handle("POST /v1/things", bodyLimit(8, keepBodies(final)))
	spy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived = r
		securityHeaders(false, nameRoutes(top)).ServeHTTP(w, r)
	})
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/things", strings.NewReader("far more than eight bytes"))
	req.ContentLength = -1 // streamed: the limit is met while reading, not refused up front
	rec := httptest.NewRecorder()
	withRequestState(resolver, spy).ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Error(t, readErr, "the body is over the limit")
	require.Same(t, arrived, served, "a layer copied the request")
	st := stateOf(served.Context())
	require.NotNil(t, st)
	require.True(t, bodyTooLarge(served.Context()), "bodyLimit's finding is in the state")
	require.NotNil(t, st.kept, "keepBodies' copy is in the state")
	require.NotEmpty(t, requestid.FromContext(served.Context()))
	_, ok := clientip.FromContext(served.Context())
	require.True(t, ok)
}
