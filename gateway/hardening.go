package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/backplane/backplane/internal/clientip"
)

// securityHeaders sets the headers every response carries. HSTS only makes sense, and is
// only sent, when this server itself terminates TLS.
func securityHeaders(tls bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if tls {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// bodyLimit caps request bodies. A body declared too large is refused before it is read;
// one that grows too large while streaming in is cut off, and the error handler turns
// the resulting decode failure into the same 413.
func bodyLimit(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			writeStatus(w, r, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		st, r := withState(r)
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit), exceeded: &st.exceeded}
		next.ServeHTTP(w, r)
	})
}

type limitedBody struct {
	io.ReadCloser
	exceeded *atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		b.exceeded.Store(true)
	}
	return n, err
}

// bodyTooLarge reports whether the request's body hit the limit.
func bodyTooLarge(ctx context.Context) bool {
	st := stateOf(ctx)
	return st != nil && st.exceeded.Load()
}

// clientIPFrom returns the client's address as text, for the services.
func clientIPFrom(ctx context.Context) string {
	if ip, ok := clientip.FromContext(ctx); ok {
		return ip.String()
	}
	return ""
}
