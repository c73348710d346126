//go:build !race

// The race detector allocates on its own, so allocation counts are pinned without it.

package authn

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Between renewals the service credential hands grpc-go the same metadata, allocating
// nothing per call.
func TestServiceTokenCredentialsAllocateOnlyWhenTheyMint(t *testing.T) { //nolint:paralleltest // AllocsPerRun refuses a parallel test
	tokens, err := NewHMACServiceTokens([]byte("0123456789abcdef0123456789abcdef"), time.Minute, nil)
	require.NoError(t, err)
	creds := tokens.PerRPCCredentials("gateway")
	_, err = creds.GetRequestMetadata(context.Background())
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(100, func() {
		md, err := creds.GetRequestMetadata(context.Background())
		if err != nil || md[ServiceTokenHeader] == "" {
			t.Fatal("no token", err)
		}
	})
	require.Zero(t, allocs)
}
