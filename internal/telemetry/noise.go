package telemetry

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"
)

// untracedPaths are the admin endpoints: probes and scrapes arrive every few seconds
// from every prober and Prometheus, and say nothing about the product.
var untracedPaths = map[string]bool{
	"/healthz": true,
	"/readyz":  true,
	"/livez":   true,
	"/metrics": true,
}

// HTTPFilter is an otelhttp filter (otelhttp.WithFilter) that leaves health,
// readiness and /metrics requests unmeasured and untraced.
func HTTPFilter(r *http.Request) bool {
	return !untracedPaths[r.URL.Path]
}

// Untraced wraps h so that nothing it does is traced: not the request, nor the
// checks /readyz runs against the database, Redis and the other services. Serve the
// admin endpoints through it; HTTPFilter alone would leave those checks to start
// traces of their own.
func Untraced(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(WithoutTracing(r.Context())))
	})
}

// GRPCFilter returns an otelgrpc filter (otelgrpc.WithFilter) for servers and
// clients. It leaves out the gRPC health service, which load balancers and /readyz
// call every few seconds, and server reflection. When known is not nil it also
// leaves out the methods known rejects: rpc.method comes from the caller, and a
// client sending made-up method names would otherwise mint a new series with each.
func GRPCFilter(known func(fullMethod string) bool) func(*stats.RPCTagInfo) bool {
	return func(info *stats.RPCTagInfo) bool {
		m := info.FullMethodName
		if strings.HasPrefix(m, "/grpc.health.v1.Health/") || strings.HasPrefix(m, "/grpc.reflection.") {
			return false
		}
		return known == nil || known(m)
	}
}

// SetHTTPRoute names the REST request's server span after its route template
// ("GET /v1/users/{user_id}") and records http.route on the span and on the
// request's otelhttp metrics, so that latency splits by endpoint. A router that
// matches after otelhttp has started the span (grpc-gateway) calls it once the route
// is known; net/http's ServeMux needs nothing, otelhttp reads its pattern itself.
func SetHTTPRoute(ctx context.Context, method, route string) {
	if route == "" {
		return
	}
	attr := semconv.HTTPRoute(route)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetName(spanMethod(method) + " " + route)
		span.SetAttributes(attr)
	}
	if labeler, ok := otelhttp.LabelerFromContext(ctx); ok {
		labeler.Add(attr)
	}
}

// spanMethod returns method if it is a standard one and "HTTP" otherwise, as the
// HTTP semantic conventions name spans: a client's made-up method must not become
// part of a span name.
func spanMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	default:
		return "HTTP"
	}
}
