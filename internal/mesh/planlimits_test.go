package mesh_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/metadata"

	"github.com/backplane/backplane/gateway"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/internal/ratelimit"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/internal/stripetest"
	"github.com/backplane/backplane/services/subscription"
)

// The whole way from Stripe to the edge: a webhook puts a user on a paid plan, and the
// edge's rate limit for that user is the plan's within a second of the webhook's answer.
func TestPlanChangeFromTheWebhookFeltAtTheEdge(t *testing.T) {
	t.Parallel()
	const secret = "whsec_mesh_test"
	fake := stripetest.NewFake(t)
	price := fake.AddPrice("backplane_pro_monthly", 2000, "usd", "month")
	env := map[string]string{
		"BACKPLANE_STRIPE_SECRET_KEY":     "sk_test_mesh",
		"BACKPLANE_STRIPE_WEBHOOK_SECRET": secret,
		"BACKPLANE_STRIPE_API_BASE":       fake.URL,
	}
	def := subscription.Definition()
	start, err := def.LoadConfig(config.NewEnv(func(k string) string { return env[k] }))
	require.NoError(t, err)
	rdb := redistest.Client(t)
	inst, err := start(t.Context(), service.Deps{
		Logger: slog.New(slog.DiscardHandler), DB: dbtest.NewPool(t, "subscription", def.Migrations), Redis: rdb,
		PublicURL: "https://app.backplane.test",
	})
	require.NoError(t, err)
	client := subscriptionv1.NewSubscriptionServiceClient(grpctest.Start(t, inst.Register).Conn)

	static := ratelimit.StaticPolicy{
		Anonymous:     ratelimit.Limit{Rate: 1, Period: time.Minute, Burst: 1},
		Authenticated: ratelimit.Limit{Rate: 2, Period: time.Minute, Burst: 2},
	}
	policy, err := gateway.NewPlanPolicy(t.Context(), gateway.PlanPolicyConfig{Subscription: client, Redis: rdb, Channel: plans.ChangesChannel, Static: static})
	require.NoError(t, err)
	t.Cleanup(func() { _ = policy.Stop(context.Background()) })
	user := uuid.NewString()
	limitOf := func() int {
		lim, _, err := policy.LimitFor(t.Context(), ratelimit.Subject{UserID: user})
		require.NoError(t, err)
		return lim.Rate
	}
	require.Equal(t, 600, limitOf(), "the free plan's, cached")

	sub := fake.NewSubscription("cus_mesh", price.ID, map[string]string{"user_id": user})
	body := stripetest.Event("evt_mesh_"+uuid.NewString(), stripe.EventTypeCustomerSubscriptionCreated, sub)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "stripe-signature", stripetest.Sign(body, secret, time.Now()))
	_, err = client.HandleStripeWebhook(ctx, &subscriptionv1.HandleStripeWebhookRequest{Body: &httpbody.HttpBody{ContentType: "application/json", Data: body}})
	require.NoError(t, err)
	answered := time.Now()
	require.Eventually(t, func() bool { return limitOf() == 3000 }, time.Second, 5*time.Millisecond, "pro_monthly's 3,000/min within 1 s")
	t.Logf("felt %s after the webhook's answer", time.Since(answered))
}
