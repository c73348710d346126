package gateway

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorHandler is the one place where a gRPC status becomes an HTTP response: the status
// code from grpc-gateway's standard mapping and a JSON body {code, message, details},
// the google.rpc.Status that gRPC clients receive, so both doors report errors alike.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// routingErrorHandler names the path in 404s; other routing errors (405) keep
// grpc-gateway's answer, which already has the same JSON shape.
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus == http.StatusNotFound {
		errorHandler(ctx, mux, m, w, r, status.Error(codes.NotFound, "no route for "+r.Method+" "+r.URL.Path))
		return
	}
	runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
}
