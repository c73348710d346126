package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/backplane/backplane/internal/clientip"
	"github.com/backplane/backplane/internal/requestid"
)

// forwardedHeaders are HTTP request headers passed to services as metadata under their
// lower-cased names. Webhook signatures must arrive untouched for the owning service to
// verify them over the raw body.
var forwardedHeaders = map[string]bool{
	"Stripe-Signature":                       true,
	"X-Twilio-Email-Event-Webhook-Signature": true,
	"X-Twilio-Email-Event-Webhook-Timestamp": true,
	"Idempotency-Key":                        true,
}

func incomingHeaderMatcher(key string) (string, bool) {
	key = textproto.CanonicalMIMEHeaderKey(key)
	if forwardedHeaders[key] {
		return strings.ToLower(key), true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// exposedHeaders are the only metadata keys that leave as HTTP headers: services must not
// leak internals through headers by accident.
var exposedHeaders = map[string]string{
	"retry-after":         "Retry-After",
	"ratelimit-limit":     "RateLimit-Limit",
	"ratelimit-remaining": "RateLimit-Remaining",
	"ratelimit-reset":     "RateLimit-Reset",
}

func outgoingHeaderMatcher(key string) (string, bool) {
	h, ok := exposedHeaders[key]
	return h, ok
}

func newREST(ctx context.Context, cfg Config, conn *chainConn, browser http.Handler, services []string) (http.Handler, error) {
	marshaler := rawBodyMarshaler{&runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
		// Zeros, empty lists and empty maps are written, so a client sees every field the
		// document lists; an unset message field (a timestamp that never happened) is left
		// out rather than written as null, which the document's schemas do not allow.
		MarshalOptions: protojson.MarshalOptions{EmitDefaultValues: true},
		// Unknown fields are refused, not silently dropped: a misspelt field that is
		// ignored is a bug the client never hears about.
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithIncomingHeaderMatcher(incomingHeaderMatcher),
		runtime.WithOutgoingHeaderMatcher(outgoingHeaderMatcher),
		runtime.WithOutgoingTrailerMatcher(outgoingHeaderMatcher),
		runtime.WithMetadata(func(ctx context.Context, _ *http.Request) metadata.MD {
			return metadata.Pairs(requestid.MetadataKey, requestid.FromContext(ctx))
		}),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithMiddlewares(noteRESTRoute),
	)
	for _, e := range cfg.APIs {
		if err := e.RegisterREST(ctx, mux, conn); err != nil {
			return nil, fmt.Errorf("gateway: mount REST routes of %s: %w", e.Service.FullName(), err)
		}
	}
	top := http.NewServeMux()
	restDoor := bodyLimit(cfg.MaxBodyBytes, keepBodies(mux))
	top.Handle("/", restDoor)
	mountAssets(top, mux, conn, restDoor) // streamed file routes, without the body limit (assets.go)
	docs, err := docsHandler(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	top.Handle("GET /openapi.json", docs)
	top.Handle("GET /docs", docs)
	top.Handle("GET /docs/", docs)
	if cfg.DevPages {
		mountDevPages(top)
	}
	rpc := bodyLimit(cfg.MaxBodyBytes, browser)
	methodPaths := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isBrowserRPC(r) {
			rpc.ServeHTTP(w, r)
			return
		}
		restDoor.ServeHTTP(w, r) // a plain POST: no such REST route, answered as any other
	})
	for _, name := range services {
		top.Handle("POST /"+name+"/", methodPaths)
	}

	// Outermost first: every response carries its request id and security headers, and
	// CORS preflights are answered before anything else runs.
	h := nameRoutes(top)
	h = withCORS(cfg.CORS, h)
	h = securityHeaders(cfg.TLS, h)
	return withRequestState(cfg.ClientIP, h), nil
}

// isBrowserRPC reports whether r is a gRPC-Web or Connect call. Connect clients mark
// unary calls with Connect-Protocol-Version (the protocol lets servers require it), and
// streams and gRPC-Web by their content types.
func isBrowserRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc-web") || strings.HasPrefix(ct, "application/connect+") ||
		r.Header.Get("Connect-Protocol-Version") != ""
}

// requestState is what the REST door's layers learn of a request as it passes through
// them: the route that served it (noteRESTRoute), the body as read so far (keepBodies),
// whether the body hit the limit (bodyLimit). It is one context value, made as the
// request arrives, so that the layers share one copy of the request: a copy each, as
// r.WithContext makes, was 7.5 % of the bytes the serve gateway allocated per request.
type requestState struct {
	route    string
	kept     *keptBody
	exceeded atomic.Bool
}

type requestStateKey struct{}

// stateOf returns the request's state, or nil outside the REST door.
func stateOf(ctx context.Context) *requestState {
	st, _ := ctx.Value(requestStateKey{}).(*requestState)
	return st
}

// withState returns r's state, giving r one (in a copy of r) if withRequestState did
// not, as when a layer is served on its own.
func withState(r *http.Request) (*requestState, *http.Request) {
	if st := stateOf(r.Context()); st != nil {
		return st, r
	}
	st := &requestState{}
	return st, r.WithContext(context.WithValue(r.Context(), requestStateKey{}, st))
}

// withRequestState accepts the client's X-Request-Id or mints one and echoes it, works
// out the client's address (believing proxy headers only from trusted proxies), and
// puts both in the context, for logs, rate limits and the metadata sent to services,
// beside the request's state.
func withRequestState(resolver *clientip.Resolver, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestid.Accept(r.Header.Get(requestid.Header))
		w.Header().Set(requestid.Header, id)
		// On the request too, for gRPC-Web and Connect calls, whose gRPC chain reads the
		// id from the headers.
		r.Header.Set(requestid.Header, id)
		ctx := requestid.NewContext(r.Context(), id)
		ctx = clientip.WithIP(ctx, resolver.FromHTTP(r))
		ctx = context.WithValue(ctx, requestStateKey{}, &requestState{})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
