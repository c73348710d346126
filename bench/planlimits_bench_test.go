package bench_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc"

	"github.com/backplane/backplane/gateway"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/ratelimit"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/services"
)

// roomyPlan answers every user's entitlements with a plan whose limit never refuses in
// a benchmark: 60,000,000 a minute, the static limit's million a second.
type roomyPlan struct {
	subscriptionv1.SubscriptionServiceClient
}

func (roomyPlan) GetEntitlements(context.Context, *subscriptionv1.GetEntitlementsRequest, ...grpc.CallOption) (*subscriptionv1.GetEntitlementsResponse, error) {
	return &subscriptionv1.GetEntitlementsResponse{PlanId: "roomy", RateLimitPerMinute: 60_000_000}, nil
}

// BenchmarkRESTEdgePlanLimits: REST GET /v1/users/me through the whole chain with the
// rate limit taken from the caller's plan (cached per user, following the
// announcements on Redis), against the same chain with the static limits. Aim:
// throughput-ratio ≥ 0.9.
func BenchmarkRESTEdgePlanLimits(b *testing.B) {
	e := startEdge(b, echo{}, false)
	static, ok := e.security.rateLimit.Policy.(ratelimit.StaticPolicy)
	if !ok {
		b.Fatal("the edge's policy is not the static one")
	}
	policy, err := gateway.NewPlanPolicy(context.Background(), gateway.PlanPolicyConfig{
		Subscription: roomyPlan{}, Redis: redistest.Client(b), Channel: "bench-plans:" + rand.Text(), Static: static,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = policy.Stop(context.Background()) })
	limits := *e.security.rateLimit
	limits.Policy = policy
	backends := map[string]grpc.ClientConnInterface{}
	for _, o := range services.Names() {
		backends[o] = e.backend
	}
	serverCfg := grpctest.ServerConfig(b)
	serverCfg.Authenticate = e.security.interceptors
	gw, err := gateway.New(context.Background(), gateway.Config{
		Logger: logging.New(io.Discard, logging.Options{}), Server: serverCfg, Backends: backends,
		APIs: services.APIs(), RateLimit: &limits,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(gw.REST())
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	compare(b, 4000, 8,
		httpGet(b.Context(), client, e.gwREST+"/v1/users/me", e.security.token),
		httpGet(b.Context(), client, srv.URL+"/v1/users/me", e.security.token))
}
