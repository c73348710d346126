package authn

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/backplane/backplane/internal/identity"
)

// A stream is authenticated once, when it opens; these causes end it later, when the
// credential that opened it stops being good.
var (
	errStreamSessionEnded = errors.New("authn: the session of the stream ended")
	errStreamTokenExpired = errors.New("authn: the access token of the stream expired")
)

// serveStream runs an authorized stream's handler. A stream opened with an access token
// ends with UNAUTHENTICATED when its session ends (heard from the SessionFeed) or the
// token expires, whatever the handler does with the cancelled context: a stream must not
// outlive the credential that opened it. API keys are checked per call and have neither.
func (in *Interceptor) serveStream(ctx context.Context, srv any, ss grpc.ServerStream, handler grpc.StreamHandler) error {
	p, ok := identity.FromContext(ctx)
	if !ok || (p.SessionID == "" && p.Expiry.IsZero()) {
		return handler(srv, &principalStream{ServerStream: ss, ctx: ctx})
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if !p.Expiry.IsZero() {
		expire := time.AfterFunc(time.Until(p.Expiry), func() { cancel(errStreamTokenExpired) })
		defer expire.Stop()
	}
	if in.ends != nil && p.SessionID != "" {
		ended, stop := in.ends.Watch(p.SessionID)
		defer stop()
		go func() {
			select {
			case <-ended:
				cancel(errStreamSessionEnded)
			case <-ctx.Done():
			}
		}()
	}
	err := handler(srv, &principalStream{ServerStream: ss, ctx: ctx})
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errStreamSessionEnded):
		ss.SetTrailer(metadata.Pairs(WWWAuthenticateHeader, challengeInvalid))
		return status.Error(codes.Unauthenticated, "the session has ended; sign in again")
	case errors.Is(cause, errStreamTokenExpired):
		ss.SetTrailer(metadata.Pairs(WWWAuthenticateHeader, challengeInvalid))
		return status.Error(codes.Unauthenticated, "the access token has expired; refresh it and reconnect")
	}
	return err
}
