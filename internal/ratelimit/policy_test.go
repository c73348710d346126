package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSubjectKey(t *testing.T) {
	t.Parallel()
	require.Equal(t, "user:u1", Subject{UserID: "u1", APIKeyID: "k1", IP: "192.0.2.1"}.Key())
	require.Equal(t, "key:k1", Subject{APIKeyID: "k1", IP: "192.0.2.1"}.Key())
	require.Equal(t, "ip:2001:db8::1", Subject{IP: "2001:db8::1"}.Key())
	require.Equal(t, "target:user:u1", Subject{Target: UserTarget("u1"), IP: "192.0.2.1"}.Key())
	require.True(t, Subject{Target: UserTarget("u1")}.Anonymous(), "a target alone is limited as an address is")
}

func TestEmailTargetFoldsCaseAndHidesTheAddress(t *testing.T) {
	t.Parallel()
	require.Equal(t, EmailTarget("ada@example.com"), EmailTarget(" Ada@Example.COM "))
	require.NotEqual(t, EmailTarget("ada@example.com"), EmailTarget("bob@example.com"))
	require.NotContains(t, EmailTarget("ada@example.com"), "ada")
}

func TestStaticPolicy(t *testing.T) {
	t.Parallel()
	p := StaticPolicy{
		Anonymous:     Limit{Rate: 60, Period: time.Minute, Burst: 60},
		Authenticated: Limit{Rate: 600, Period: time.Minute, Burst: 600},
	}

	l, name, err := p.LimitFor(t.Context(), Subject{IP: "192.0.2.1"})
	require.NoError(t, err)
	require.Equal(t, PolicyAnonymous, name)
	require.Equal(t, p.Anonymous, l)

	for _, s := range []Subject{{UserID: "u1"}, {APIKeyID: "k1"}} {
		l, name, err := p.LimitFor(t.Context(), s)
		require.NoError(t, err)
		require.Equal(t, PolicyAuthenticated, name)
		require.Equal(t, p.Authenticated, l)
	}
}
