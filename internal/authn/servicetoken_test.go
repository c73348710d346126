package authn

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
)

func TestServiceTokens(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Now()
	tokens, err := NewHMACServiceTokens(secret, time.Minute, func() time.Time { return now })
	require.NoError(t, err)

	tok, err := tokens.Mint("gateway")
	require.NoError(t, err)
	name, err := tokens.Check(tok)
	require.NoError(t, err)
	require.Equal(t, "gateway", name)

	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(ServiceTokenHeader, tok))
	name, err = tokens.AuthenticateService(ctx)
	require.NoError(t, err)
	require.Equal(t, "gateway", name)

	other, err := NewHMACServiceTokens([]byte("another-secret-another-secret-000"), time.Minute, func() time.Time { return now })
	require.NoError(t, err)
	forged, err := other.Mint("gateway")
	require.NoError(t, err)

	later, err := NewHMACServiceTokens(secret, time.Minute, func() time.Time { return now.Add(2 * time.Minute) })
	require.NoError(t, err)
	_, err = later.Check(tok)
	require.ErrorIs(t, err, ErrInvalidToken, "expired")

	longLived, err := NewHMACServiceTokens(secret, time.Hour, func() time.Time { return now })
	require.NoError(t, err)
	long, err := longLived.Mint("gateway")
	require.NoError(t, err)

	for name, bad := range map[string]string{
		"other secret":      forged,
		"renamed service":   "v1.billing" + tok[len("v1.gateway"):],
		"outlives lifetime": long,
		"empty":             "",
		"garbage":           "v1.a.b.c.d",
	} {
		_, err := tokens.Check(bad)
		require.ErrorIs(t, err, ErrInvalidToken, name)
	}

	_, err = NewHMACServiceTokens([]byte("short"), time.Minute, nil)
	require.Error(t, err)
}

func TestServiceTokenCredentialsMintOncePerHalfLifeAndChecksStillExpire(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tokens, err := NewHMACServiceTokens([]byte("0123456789abcdef0123456789abcdef"), time.Minute, func() time.Time { return now })
	require.NoError(t, err)
	creds := tokens.PerRPCCredentials("gateway")
	attached := func() string {
		md, err := creds.GetRequestMetadata(context.Background())
		require.NoError(t, err)
		return md[ServiceTokenHeader]
	}

	first := attached()
	now = now.Add(29 * time.Second)
	require.Equal(t, first, attached(), "the same token for the first half of its life")
	now = now.Add(time.Second)
	second := attached()
	require.NotEqual(t, first, second, "a new one once half its life has passed")

	// The checker remembers a verified token, but not past its expiry.
	name, err := tokens.Check(second)
	require.NoError(t, err)
	require.Equal(t, "gateway", name)
	name, err = tokens.Check(second)
	require.NoError(t, err)
	require.Equal(t, "gateway", name)
	now = now.Add(time.Minute)
	_, err = tokens.Check(second)
	require.ErrorIs(t, err, ErrInvalidToken, "expired, though remembered")
}
