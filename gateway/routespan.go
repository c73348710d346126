package gateway

import (
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/backplane/backplane/internal/telemetry"
)

// REST requests are traced and measured by their route template ("GET
// /v1/users/{user_id}"), never by the path itself, which the client chooses: spans are
// named after it, carry it as http.route, and http.server.request.duration is
// labelled with it, so that latency splits by endpoint. Two routers decide the route:
// grpc-gateway's for the API, which knows the template of the rule it matched, and
// net/http's for everything else (documents, dev pages, gRPC-Web and Connect), whose
// pattern is the route. A request neither matches (a 404) keeps the method alone.

// nameRoutes serves mux and then names the request's telemetry by the route that
// served it. It must wrap the ServeMux directly: the mux records its pattern on the
// request it is given.
func nameRoutes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// grpc-gateway's router leaves the template it matched in the request's state.
		st, routed := withState(r)
		mux.ServeHTTP(w, routed)
		route := st.route
		if route == "" {
			route = muxRoute(routed.Pattern)
		}
		telemetry.SetHTTPRoute(r.Context(), r.Method, route)
	})
}

// noteRESTRoute is a grpc-gateway middleware recording the template of the rule that
// matched, for nameRoutes.
//
// grpc-gateway wraps each route's handler once, when the route is registered, so the
// template, the same on every request of the route, is worked out on the first and
// kept: a regular expression per request is a cost every call would pay.
func noteRESTRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	var template atomic.Pointer[string]
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if st := stateOf(r.Context()); st != nil {
			if t := template.Load(); t != nil {
				st.route = *t
			} else if pattern, ok := runtime.HTTPPattern(r.Context()); ok {
				t := restTemplate(pattern.String())
				template.Store(&t)
				st.route = t
			}
		}
		next(w, r, params)
	}
}

// captureAny is a path variable matching one segment as grpc-gateway writes it:
// "{user_id=*}", which the API's own rules and documents write "{user_id}".
var captureAny = regexp.MustCompile(`\{([^{}=]+)=\*\}`)

// restTemplate returns a grpc-gateway pattern as the API's rules write it.
func restTemplate(pattern string) string {
	return captureAny.ReplaceAllString(pattern, "{$1}")
}

// muxRoute returns the route of a net/http pattern ("GET /docs/" → "/docs/"), or ""
// for the catch-all "/", which hands the request to grpc-gateway's router: a request
// that ends there unmatched has no route.
func muxRoute(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	if i := strings.Index(pattern, "/"); i > 0 {
		pattern = pattern[i:] // a host before the path
	}
	if pattern == "/" {
		return ""
	}
	return pattern
}
