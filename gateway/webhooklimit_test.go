package gateway_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/ratelimit"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/scenario"
)

// TestWebhooksSpendABudgetOfTheirOwn: a burst of Stripe or SendGrid deliveries from one
// address spends a webhook budget the size of the authenticated limit, not the address's
// anonymous budget, which stays whole for the address's other anonymous calls; and the
// webhook budget still runs out.
func TestWebhooksSpendABudgetOfTheirOwn(t *testing.T) {
	t.Parallel()
	s := setupSecured(t, limiter(t, redistest.Client(t), ratelimit.FailOpen, "2/m", "5/m"))
	ip := http.Header{"X-Forwarded-For": {randomIP(t)}}
	deliver := func(t *testing.T, i int) reply {
		path := "/webhooks/stripe"
		if i%2 == 1 {
			path = "/webhooks/sendgrid"
		}
		resp, _ := s.do(t, http.MethodPost, path, `[]`, ip)
		return resp
	}

	scenario.Step(t, "a burst past the anonymous limit is admitted", func(t *testing.T) {
		for i := range 4 {
			resp := deliver(t, i)
			require.NotEqual(t, http.StatusTooManyRequests, resp.StatusCode, "delivery %d", i)
			require.Equal(t, "5", resp.Header.Get("RateLimit-Limit"), "the webhook budget is the one spent")
		}
	})
	scenario.Step(t, "the address's anonymous budget is untouched", func(t *testing.T) {
		for i := range 2 {
			resp, _ := s.do(t, http.MethodGet, "/v1/plans", "", ip)
			require.NotEqual(t, http.StatusTooManyRequests, resp.StatusCode, "anonymous call %d", i)
			require.Equal(t, "2", resp.Header.Get("RateLimit-Limit"))
		}
	})
	scenario.Step(t, "the webhook budget is bounded", func(t *testing.T) {
		require.NotEqual(t, http.StatusTooManyRequests, deliver(t, 4).StatusCode)
		require.Equal(t, http.StatusTooManyRequests, deliver(t, 5).StatusCode, "a forger's flood runs out too")
	})
}
