package gateway

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/backplane/backplane/internal/access"
	"github.com/backplane/backplane/internal/clientip"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/ratelimit"
)

// RateLimitConfig is how the edge limits callers.
type RateLimitConfig struct {
	// Limiter decides, in Redis, shared by every gateway replica.
	Limiter *ratelimit.Limiter
	// Policy gives each caller its limit; a later issue takes it from their plan.
	Policy ratelimit.Policy
}

// rateLimiter admits or refuses each call by its caller's budget. It runs after
// authentication, so it knows whose budget to spend, and after validation, so malformed
// requests do not spend it.
type rateLimiter struct {
	cfg RateLimitConfig
}

// subject is whose budget a call spends: the user (whose API keys share it) or, for
// anonymous calls, the client's address.
func subject(ctx context.Context) ratelimit.Subject {
	var s ratelimit.Subject
	if p, ok := identity.FromContext(ctx); ok {
		s.UserID, s.APIKeyID = p.UserID, p.APIKeyID
	}
	if ip, ok := clientip.FromContext(ctx); ok {
		s.IP = ip.String()
	}
	return s
}

// admit spends the call's cost and reports the budget in headers (and, when refused,
// trailers too, where gRPC clients look for them on an error).
func (rl *rateLimiter) admit(ctx context.Context, fullMethod string) error {
	policy := access.Lookup(fullMethod)
	sub := subject(ctx)
	limit, name, err := rl.cfg.Policy.LimitFor(ctx, sub)
	if err != nil {
		return status.Error(codes.Unavailable, "rate limits are unavailable; retry shortly")
	}
	d, err := rl.cfg.Limiter.Allow(ctx, ratelimit.Request{
		Key:        sub.Key(),
		Limit:      limit,
		Policy:     name,
		Cost:       access.Cost(policy),
		FailClosed: policy.GetRateLimitFailClosed(),
	})
	switch {
	case errors.Is(err, ratelimit.ErrCostExceedsBurst):
		return status.Error(codes.ResourceExhausted, "this call costs more than your rate limit allows at once")
	case errors.Is(err, ratelimit.ErrUnavailable):
		return status.Error(codes.Unavailable, "rate limiting is unavailable; retry shortly")
	case err != nil:
		return err
	}
	md := metadata.MD{}
	for k, v := range d.Headers() {
		md.Set(k, v)
	}
	_ = grpc.SetHeader(ctx, md)
	if d.Allowed {
		return nil
	}
	_ = grpc.SetTrailer(ctx, md)
	st, _ := status.New(codes.ResourceExhausted, "rate limit exceeded; retry after "+strconv.Itoa(int(d.RetryAfter.Seconds()+0.999))+"s").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d.RetryAfter)})
	return st.Err()
}

func (rl *rateLimiter) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := rl.admit(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// stream admits a stream once, when it opens.
func (rl *rateLimiter) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := rl.admit(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
