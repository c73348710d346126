package gateway

import (
	"context"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// errorHandler is the one place where a gRPC status becomes an HTTP response: the status
// code from grpc-gateway's standard mapping (UNAUTHENTICATED 401, PERMISSION_DENIED 403,
// RESOURCE_EXHAUSTED 429, ...) and a JSON body {code, message, details}, the
// google.rpc.Status that gRPC clients receive, so both doors report errors alike. The
// fields a BadRequest names are the JSON names REST clients write (badjson.go).
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if bodyTooLarge(ctx) {
		writeStatus(w, r, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	if status.Code(err) == codes.InvalidArgument {
		if st := describeBody(ctx); st != nil {
			// The body did not decode: a BadRequest naming the field as the client wrote
			// it, rather than the parser's wording.
			err = st.Err()
		} else {
			err = restFieldNames(ctx, status.Convert(err)).Err()
		}
	}
	switch c, ok := challenge(ctx); {
	case status.Code(err) == codes.Unauthenticated && !ok:
		w = &challengeWriter{ResponseWriter: w, challenge: defaultChallenge}
	case status.Code(err) == codes.Unauthenticated, status.Code(err) == codes.PermissionDenied && ok:
		// A 403 for a missing scope carries error="insufficient_scope" (RFC 6750).
		w = &challengeWriter{ResponseWriter: w, challenge: c}
	}
	if status.Code(err) == codes.Unavailable {
		w = &retryAfterWriter{ResponseWriter: w, after: retryAfter(status.Convert(err))}
	}
	if tooLarge(err) {
		// A file over the size limit is 413 (CreateAsset's declared size as well as an
		// upload's bytes), not RESOURCE_EXHAUSTED's usual 429: retrying will not help.
		w = &statusWriter{ResponseWriter: w, code: http.StatusRequestEntityTooLarge}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, validUTF8(err))
}

// defaultChallenge is sent with a 401 when the service named no other (RFC 6750).
const defaultChallenge = `Bearer realm="backplane"`

// challenge is the WWW-Authenticate value the authentication interceptor set, if any.
func challenge(ctx context.Context) (string, bool) {
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		for _, m := range []metadata.MD{md.HeaderMD, md.TrailerMD} {
			if v := m.Get("www-authenticate"); len(v) > 0 {
				return v[0], true
			}
		}
	}
	return "", false
}

// challengeWriter puts the right WWW-Authenticate on a 401. grpc-gateway's default
// handler would send the status message there, which is not a challenge a client can
// act on.
type challengeWriter struct {
	http.ResponseWriter
	challenge string
}

func (c *challengeWriter) WriteHeader(code int) {
	c.Header().Set("WWW-Authenticate", c.challenge)
	c.ResponseWriter.WriteHeader(code)
}

// validUTF8 repairs a status message that echoes bytes the client sent (a path, a JSON
// fragment): protobuf refuses to marshal invalid UTF-8, which would turn the client's
// mistake into our 500.
func validUTF8(err error) error {
	st := status.Convert(err)
	if utf8.ValidString(st.Message()) {
		return err
	}
	p := st.Proto()
	p.Message = strings.ToValidUTF8(p.GetMessage(), "\uFFFD")
	return status.FromProto(p).Err()
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

// httpCodes maps the few HTTP statuses the edge answers itself, before any RPC, to the
// gRPC code in the body.
var httpCodes = map[int]codes.Code{
	http.StatusRequestEntityTooLarge: codes.ResourceExhausted,
	http.StatusServiceUnavailable:    codes.Unavailable,
	http.StatusNotFound:              codes.NotFound,
}

// writeStatus answers with an HTTP status and the usual {code, message, details} body,
// for errors found at the HTTP layer.
func writeStatus(w http.ResponseWriter, _ *http.Request, httpStatus int, message string) {
	code, ok := httpCodes[httpStatus]
	if !ok {
		code = codes.Unknown
	}
	body, _ := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(status.New(code, message).Proto())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}
