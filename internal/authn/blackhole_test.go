package authn

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

// A Redis that accepts connections and never answers (a blackhole: a dead host
// behind a live proxy, a partitioned link) must cost a signed-in call no more than
// the session check's own bound, whatever the client's read timeout, and answer
// UNAVAILABLE, never UNAUTHENTICATED.
func TestInterceptorAnswersUnavailableInTimeWhenRedisNeverAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token, _ := b.login(t, RoleUser)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()
	// A read timeout far past any call's budget: only the check's deadline can end it.
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ReadTimeout: time.Minute, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	verifier, err := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: b.jwks, Sessions: NewLiveSessions(rdb)})
	require.NoError(t, err)
	in, err := NewInterceptor(InterceptorConfig{Tokens: verifier, APIKeys: fakeKeys{}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)

	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))
	start := time.Now()
	_, _, err = in.authorize(ctx, authv1.AuthService_GetCurrentUser_FullMethodName)
	took := time.Since(start)
	require.Equal(t, codes.Unavailable, status.Code(err), "not logged out: retry shortly")
	require.GreaterOrEqual(t, took, SessionCheckTimeout, "the check waited for its own deadline")
	require.Less(t, took, 4*SessionCheckTimeout, "the client's minute-long read timeout was not what ended it")
}
