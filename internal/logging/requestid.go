package logging

import "context"

// requestIDKey is unexported so that only this package can set or read the id, and no
// other package's context value can collide with it.
type requestIDKey struct{}

// WithRequestID returns a copy of ctx carrying the request id that loggers from New
// add to every record as request_id. The edge sets it once per request; services set
// it from incoming metadata.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id carried by ctx, or "" when there is none.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
