package gateway

import (
	"math"
	"net/http"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	"github.com/backplane/backplane/internal/grpcserver"
)

// retryAfter is the Retry-After value, in whole seconds, for an UNAVAILABLE status: its
// RetryInfo's delay rounded up, or the servers' default.
func retryAfter(st *status.Status) string {
	delay := grpcserver.RetryDelay
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().IsValid() {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	return strconv.Itoa(max(1, int(math.Ceil(delay.Seconds()))))
}

// retryAfterWriter puts Retry-After on a 503 that has none yet, so that HTTP clients
// retry an outage as gRPC clients do from RetryInfo.
type retryAfterWriter struct {
	http.ResponseWriter
	after string
}

func (w *retryAfterWriter) WriteHeader(code int) {
	if w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", w.after)
	}
	w.ResponseWriter.WriteHeader(code)
}
