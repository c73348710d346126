package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A webhook delivery spends a per-address budget apart from the address's anonymous
// one, the size of the authenticated limit.
func TestWebhookSubject(t *testing.T) {
	t.Parallel()
	hook := Subject{IP: "192.0.2.1", Webhook: true}
	require.Equal(t, "webhook:192.0.2.1", hook.Key())
	require.NotEqual(t, Subject{IP: "192.0.2.1"}.Key(), hook.Key())

	p := StaticPolicy{
		Anonymous:     Limit{Rate: 60, Period: time.Minute, Burst: 60},
		Authenticated: Limit{Rate: 600, Period: time.Minute, Burst: 600},
	}
	l, name, err := p.LimitFor(t.Context(), hook)
	require.NoError(t, err)
	require.Equal(t, PolicyWebhook, name)
	require.Equal(t, p.Authenticated, l)
}
