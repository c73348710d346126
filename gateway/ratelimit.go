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
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	accessv1 "github.com/backplane/backplane/gen/backplane/access/v1"
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

// subjects are the budgets a call spends, in order. Most calls spend their caller's.
// Sign-in and email-sending calls (rate_limit_per_address) spend the client address's,
// whatever credential comes with them, since a token or API key would otherwise move
// them onto a budget that every sign-up renews; and then their target account's: the
// request's email field, or the signed-in user. req is nil for a stream, whose request
// arrives after it is admitted.
func subjects(ctx context.Context, policy *accessv1.Policy, req any) []ratelimit.Subject {
	caller := subject(ctx)
	if policy.GetRateLimitWebhook() {
		return webhookSubjects(caller)
	}
	if !policy.GetRateLimitPerAddress() {
		return []ratelimit.Subject{caller}
	}
	out := []ratelimit.Subject{{IP: caller.IP}}
	if email := emailOf(req); email != "" {
		out = append(out, ratelimit.Subject{Target: ratelimit.EmailTarget(email)})
	} else if caller.UserID != "" {
		out = append(out, ratelimit.Subject{Target: ratelimit.UserTarget(caller.UserID)})
	}
	return out
}

// emailOf returns the request's string field "email", if it has one.
func emailOf(req any) string {
	m, ok := req.(proto.Message)
	if !ok || m == nil {
		return ""
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("email")
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return ""
	}
	return r.Get(fd).String()
}

// admit spends the call's cost from each of its budgets and reports the first budget in
// headers, or the one that refused it (in trailers too, where gRPC clients look for them
// on an error).
func (rl *rateLimiter) admit(ctx context.Context, fullMethod string, req any) error {
	policy := access.Lookup(fullMethod)
	var report ratelimit.Decision
	for i, sub := range subjects(ctx, policy, req) {
		d, err := rl.spend(ctx, policy, sub)
		if err != nil {
			return err
		}
		if i == 0 || !d.Allowed {
			report = d
		}
		if !d.Allowed {
			break
		}
	}
	// Built straight from the pairs, every value a slice of one array: this runs on
	// every call, and the names are lower case already.
	kv := report.AppendHeaders(make([]string, 0, 8))
	md := make(metadata.MD, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		md[kv[i]] = kv[i+1 : i+2 : i+2]
	}
	_ = grpc.SetHeader(ctx, md)
	if report.Allowed {
		return nil
	}
	_ = grpc.SetTrailer(ctx, md)
	st, _ := status.New(codes.ResourceExhausted, "rate limit exceeded; retry after "+strconv.Itoa(int(report.RetryAfter.Seconds()+0.999))+"s").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(report.RetryAfter)})
	return st.Err()
}

// spend spends the call's cost from sub's budget.
func (rl *rateLimiter) spend(ctx context.Context, policy *accessv1.Policy, sub ratelimit.Subject) (ratelimit.Decision, error) {
	limit, name, err := rl.cfg.Policy.LimitFor(ctx, sub)
	if err != nil {
		return ratelimit.Decision{}, status.Error(codes.Unavailable, "rate limits are unavailable; retry shortly")
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
		return d, status.Error(codes.ResourceExhausted, "this call costs more than your rate limit allows at once")
	case errors.Is(err, ratelimit.ErrUnavailable):
		return d, status.Error(codes.Unavailable, "rate limiting is unavailable; retry shortly")
	}
	return d, err
}

func (rl *rateLimiter) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := rl.admit(ctx, info.FullMethod, req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// stream admits a stream once, when it opens.
func (rl *rateLimiter) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := rl.admit(ss.Context(), info.FullMethod, nil); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
