package gateway_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/backplane/backplane/gateway"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/ratelimit"
	"github.com/backplane/backplane/internal/redistest"
)

// entitlements stands in for the subscription service's GetEntitlements: each user's
// rate limit per minute, and a switch that makes it unreachable.
type entitlements struct {
	subscriptionv1.SubscriptionServiceClient // only GetEntitlements is called

	mu    sync.Mutex
	rate  map[string]int32
	down  bool
	calls int
}

func (e *entitlements) GetEntitlements(_ context.Context, req *subscriptionv1.GetEntitlementsRequest, _ ...grpc.CallOption) (*subscriptionv1.GetEntitlementsResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	if e.down {
		return nil, status.Error(codes.Unavailable, "the subscription service is down")
	}
	rate, ok := e.rate[req.GetUserId()]
	if !ok {
		rate = 5
	}
	return &subscriptionv1.GetEntitlementsResponse{PlanId: "plan" + strconv.Itoa(int(rate)), RateLimitPerMinute: rate}, nil
}

func (e *entitlements) set(user string, rate int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rate[user] = rate
}

func (e *entitlements) setDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
}

func (e *entitlements) callCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls
}

type planBundle struct {
	metrics *sdkmetric.ManualReader
	policy  *gateway.PlanPolicy
	subs    *entitlements
	channel string
	static  ratelimit.StaticPolicy
}

func setupPlanPolicy(t testing.TB) *planBundle {
	t.Helper()
	b := &planBundle{subs: &entitlements{rate: map[string]int32{}}, channel: "gwtest-plans:" + rand.Text()}
	b.static = ratelimit.StaticPolicy{
		Anonymous:     ratelimit.Limit{Rate: 2, Period: time.Minute, Burst: 2},
		Authenticated: ratelimit.Limit{Rate: 3, Period: time.Minute, Burst: 3},
	}
	b.metrics = sdkmetric.NewManualReader()
	var err error
	b.policy, err = gateway.NewPlanPolicy(context.Background(), gateway.PlanPolicyConfig{
		Subscription: b.subs, Redis: redistest.Client(t), Channel: b.channel, Static: b.static,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(b.metrics)), Logger: discard(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.policy.Stop(context.Background())) })
	return b
}

// fallbacks is the count of backplane.gateway.ratelimit.plan_fallbacks.
func (b *planBundle) fallbacks(t testing.TB) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, b.metrics.Collect(context.Background(), &rm))
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "backplane.gateway.ratelimit.plan_fallbacks" {
				for _, dp := range sum.DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}

func TestPlanPolicy(t *testing.T) {
	t.Parallel()
	b := setupPlanPolicy(t)
	ctx := context.Background()
	user := uuid.NewString()

	lim, name, err := b.policy.LimitFor(ctx, ratelimit.Subject{IP: "192.0.2.1"})
	require.NoError(t, err)
	require.Equal(t, b.static.Anonymous, lim, "anonymous callers have the static limit")
	require.Equal(t, ratelimit.PolicyAnonymous, name)

	b.subs.set(user, 50)
	for range 3 {
		lim, name, err = b.policy.LimitFor(ctx, ratelimit.Subject{UserID: user})
		require.NoError(t, err)
		require.Equal(t, ratelimit.Limit{Rate: 50, Period: time.Minute, Burst: 50}, lim)
		require.Equal(t, "plan:plan50", name)
	}
	require.Equal(t, 1, b.subs.callCount(), "cached: no round trip per call")

	t.Run("subscription service down", func(t *testing.T) {
		other := uuid.NewString()
		b.subs.setDown(true)
		defer b.subs.setDown(false)
		calls := b.subs.callCount()
		for range 3 {
			lim, name, err := b.policy.LimitFor(ctx, ratelimit.Subject{UserID: other})
			require.NoError(t, err)
			require.Equal(t, b.static.Authenticated, lim)
			require.Equal(t, ratelimit.PolicyAuthenticated, name)
		}
		require.Equal(t, calls+1, b.subs.callCount(), "an outage is not a round trip per call either")
		require.Equal(t, int64(1), b.fallbacks(t), "counted")
	})
}

// A plan change announced by the subscription service holds at the edge within a
// second: the rate limit a signed-in caller meets on GET /v1/users/me follows it.
func TestPlanChangeFeltAtTheEdgeWithinASecond(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	b := setupPlanPolicy(t)
	limits := limiter(t, rdb, ratelimit.FailOpen, "100/m", "100/m")
	limits.Policy = b.policy
	s := setupSecured(t, limits)
	user := uuid.NewString()
	sid := rand.Text()
	require.NoError(t, s.sessions.MarkLive(context.Background(), sid, time.Now().Add(time.Hour)))
	tok, _, err := s.issuer.Issue(user, sid, nil)
	require.NoError(t, err)
	header := http.Header{"Authorization": {"Bearer " + tok}}

	b.subs.set(user, 7)
	resp, _ := s.do(t, http.MethodGet, "/v1/users/me", "", header)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "7", resp.Header.Get("RateLimit-Limit"), "the plan's limit")

	// The webhook's effect: the copy changes, then the change is announced.
	b.subs.set(user, 11)
	require.NoError(t, rdb.Publish(context.Background(), b.channel, user).Err())
	announced := time.Now()
	require.Eventually(t, func() bool {
		resp, _ := s.do(t, http.MethodGet, "/v1/users/me", "", header)
		return resp.Header.Get("RateLimit-Limit") == "11"
	}, time.Second, 10*time.Millisecond, "the new plan's limit within 1 s of the announcement")
	t.Logf("felt %s after the announcement", time.Since(announced))

	b.subs.setDown(true)
	require.NoError(t, rdb.Publish(context.Background(), b.channel, user).Err())
	require.Eventually(t, func() bool {
		resp, _ := s.do(t, http.MethodGet, "/v1/users/me", "", header)
		return resp.StatusCode == http.StatusOK && resp.Header.Get("RateLimit-Limit") == "3"
	}, time.Second, 10*time.Millisecond, "subscription down: the static authenticated limit")
}
