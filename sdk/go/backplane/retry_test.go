package backplane_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/sdk/go/backplane"
)

// A rate-limited call is tried again after the delay the server's RetryInfo asks for;
// a delay longer than the policy allows is returned at once, with its RetryInfo. The
// calls are anonymous (ListPlans), on the static per-address limit: a signed-in
// caller's limit comes from its plan, in calls per minute, too slow to test with.
func TestRateLimitedCallsHonourRetryInfo(t *testing.T) {
	t.Parallel()
	srv, err := startDev(t, "BACKPLANE_RATE_LIMIT_ANONYMOUS=2/s,burst=1")
	require.NoError(t, err)
	ctx := t.Context()

	var sent calls
	c := newClient(t, srv.grpc, sent.option())
	listPlans := func() error {
		_, err := c.Subscription.ListPlans(ctx, &subscriptionv1.ListPlansRequest{})
		return err
	}

	// Each call spends the one-call burst; the next is refused for about half a second,
	// which the client waits before trying again.
	succeeded := sent.of(listPlansMethod, "OK")
	for range 3 {
		refusedBefore := sent.of(listPlansMethod, "ResourceExhausted")
		start := time.Now()
		require.NoError(t, listPlans())
		if sent.of(listPlansMethod, "ResourceExhausted") > refusedBefore {
			delay := sent.lastRetryDelay()
			require.Positive(t, delay)
			require.GreaterOrEqual(t, time.Since(start), delay, "the retry waited for the server's delay")
		}
	}
	require.Positive(t, sent.of(listPlansMethod, "ResourceExhausted"), "the limit refused calls")
	require.Equal(t, succeeded+3, sent.of(listPlansMethod, "OK"), "and each refused call succeeded when tried again")

	// A client that will not wait that long gets the refusal at once, and when to come
	// back. It calls from the same address, so it spends the same budget.
	var impatientSent calls
	impatient := newClient(t, srv.grpc, impatientSent.option(),
		backplane.WithRetryPolicy(backplane.RetryPolicy{MaxRetryDelay: 10 * time.Millisecond}))
	for range 3 {
		start := time.Now()
		_, err = impatient.Subscription.ListPlans(ctx, &subscriptionv1.ListPlansRequest{})
		if err != nil {
			require.Less(t, time.Since(start), 300*time.Millisecond, "no wait")
			break
		}
	}
	requireCode(t, codes.ResourceExhausted, err)
	e := asError(t, err)
	require.NotNil(t, e.RetryInfo)
	require.Positive(t, e.RetryInfo.Delay)
	require.LessOrEqual(t, e.RetryInfo.Delay, time.Second)
	require.Equal(t, 1, impatientSent.of(listPlansMethod, "ResourceExhausted"), "the refused call was not repeated")
}

// listPlansMethod is ListPlans' full gRPC method name, as the call recorder sees it.
const listPlansMethod = "/backplane.subscription.v1.SubscriptionService/ListPlans"

// UNAVAILABLE is retried, with backoff, only for calls that are safe to repeat.
func TestUnavailableIsRetriedOnlyWhenSafe(t *testing.T) {
	t.Parallel()
	nobody, err := freeAddr()
	require.NoError(t, err)
	var sent calls
	c := newClient(t, nobody, sent.option(), backplane.WithRetryPolicy(backplane.RetryPolicy{
		MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	}))
	ctx := t.Context()

	cases := []struct {
		name     string
		method   string
		call     func() error
		attempts int
	}{
		{"GET", "/backplane.subscription.v1.SubscriptionService/ListPlans", func() error {
			_, err := c.Subscription.ListPlans(ctx, &subscriptionv1.ListPlansRequest{})
			return err
		}, 3},
		{"POST", "/backplane.auth.v1.AuthService/SignUp", func() error {
			_, err := c.Auth.SignUp(ctx, &authv1.SignUpRequest{Email: newEmail(), Password: password, DisplayName: "x"})
			return err
		}, 1},
		{"POST with an idempotency key", "/backplane.usage.v1.UsageService/RecordUsage", func() error {
			_, err := c.Usage.RecordUsage(ctx, &usagev1.RecordUsageRequest{Meter: "api_calls", Quantity: 1, IdempotencyKey: "k1"})
			return err
		}, 3},
		{"POST marked Idempotent", "/backplane.auth.v1.AuthService/ForgotPassword", func() error {
			_, err := c.Auth.ForgotPassword(ctx, &authv1.ForgotPasswordRequest{Email: newEmail()}, backplane.Idempotent())
			return err
		}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			requireCode(t, codes.Unavailable, err)
			require.Equal(t, tc.attempts, sent.of(tc.method))
		})
	}

	// A POST without its idempotency key is not safe to repeat.
	_, err = c.Usage.RecordUsage(ctx, &usagev1.RecordUsageRequest{Meter: "api_calls", Quantity: 1})
	requireCode(t, codes.Unavailable, err)
	require.Equal(t, 3+1, sent.of("/backplane.usage.v1.UsageService/RecordUsage"))
}

// The backoff never outlives the caller's deadline: a retry that could not happen in
// time is not waited for.
func TestRetriesStopAtTheDeadline(t *testing.T) {
	t.Parallel()
	nobody, err := freeAddr()
	require.NoError(t, err)
	c := newClient(t, nobody, backplane.WithRetryPolicy(backplane.RetryPolicy{
		MaxAttempts: 10, InitialBackoff: time.Second, MaxBackoff: time.Second,
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Subscription.ListPlans(ctx, &subscriptionv1.ListPlansRequest{})
	require.Less(t, time.Since(start), 300*time.Millisecond)
	require.Contains(t, []codes.Code{codes.Unavailable, codes.DeadlineExceeded}, status.Code(err))
}
