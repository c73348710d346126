package mesh

import (
	"context"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/backplane/backplane/gateway"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/internal/ratelimit"
)

// rateLimitPolicy is the edge's rate-limit policy: each signed-in caller's plan when the
// mesh has a subscription service, the static limits otherwise (and for anonymous
// callers, and while the subscription service cannot answer).
func (p *Process) rateLimitPolicy(ctx context.Context, cfg config.Config, backends map[string]grpc.ClientConnInterface, rdb redis.UniversalClient) (ratelimit.Policy, error) {
	static := ratelimit.StaticPolicy{Anonymous: cfg.Edge.RateLimitAnonymous, Authenticated: cfg.Edge.RateLimitAuthenticated}
	conn := backends["subscription"]
	if conn == nil {
		return static, nil
	}
	policy, err := gateway.NewPlanPolicy(ctx, gateway.PlanPolicyConfig{
		Subscription:  subscriptionv1.NewSubscriptionServiceClient(conn),
		Redis:         rdb,
		Channel:       plans.ChangesChannel,
		Static:        static,
		MeterProvider: p.tel.MeterProvider(),
		Logger:        p.log,
	})
	if err != nil {
		return nil, err
	}
	p.OnStop("plan rate limits", policy.Stop)
	return policy, nil
}
