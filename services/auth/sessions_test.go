package auth

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/scenario"
)

func refresh(b *testBundle, token string) (*authv1.RefreshTokenResponse, error) {
	return b.srv.RefreshToken(context.Background(), &authv1.RefreshTokenRequest{RefreshToken: token})
}

func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config, _ *wiring) { c.RefreshReuseGrace = 0 })
	acct := b.signUp(t, uniqueEmail())
	first := acct.tokens.GetRefreshToken()
	var third *authv1.RefreshTokenResponse

	scenario.Step(t, "refresh rotates", func(t *testing.T) {
		second, err := refresh(b, first)
		require.NoError(t, err)
		require.NotEqual(t, first, second.GetRefreshToken())
		require.Equal(t, "Bearer", second.GetTokenType())
		require.True(t, b.live(second.GetAccessToken()))

		third, err = refresh(b, second.GetRefreshToken())
		require.NoError(t, err)
	})
	// The spent first token comes back: the session (the whole family) ends.
	scenario.Step(t, "a spent token ends the whole family", func(t *testing.T) {
		_, err := refresh(b, first)
		require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
		_, err = refresh(b, third.GetRefreshToken())
		require.Equal(t, fault.Unauthenticated, fault.KindOf(err), "the newest token of the family dies too")
		require.False(t, b.live(third.GetAccessToken()), "and the session's access tokens stop at the edge")
		require.False(t, b.live(acct.tokens.GetAccessToken()))

		var reason string
		require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT end_reason FROM sessions WHERE user_id = $1", acct.user.GetId()).Scan(&reason))
		require.Equal(t, endRefreshReuse, reason)
	})
	scenario.Step(t, "a made-up token is refused", func(t *testing.T) {
		_, err := refresh(b, "made-up-token")
		require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
	})
}

func TestRefreshGraceAllowsConcurrentRetry(t *testing.T) {
	t.Parallel()
	b := setup(t) // default grace: 10s
	acct := b.signUp(t, uniqueEmail())
	var retry *authv1.RefreshTokenResponse

	// The client's retry of the same request, within the window, is answered with the
	// same successor: the session stays one chain.
	scenario.Step(t, "a retry within the window is answered", func(t *testing.T) {
		a, err := refresh(b, acct.tokens.GetRefreshToken())
		require.NoError(t, err)
		retry, err = refresh(b, acct.tokens.GetRefreshToken())
		require.NoError(t, err)
		require.Equal(t, a.GetRefreshToken(), retry.GetRefreshToken(), "the same successor, not a fork")
		require.True(t, b.live(retry.GetAccessToken()))
		_, err = refresh(b, a.GetRefreshToken())
		require.NoError(t, err)
	})
	scenario.Step(t, "after the window, the same reuse ends the session", func(t *testing.T) {
		_, err := b.pool.Exec(context.Background(), "UPDATE refresh_tokens SET spent_time = spent_time - interval '11 seconds'")
		require.NoError(t, err)
		_, err = refresh(b, acct.tokens.GetRefreshToken())
		require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
		require.False(t, b.live(retry.GetAccessToken()))
	})
}

func TestRefreshTokenExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := b.signUp(t, uniqueEmail())
	_, err := b.pool.Exec(context.Background(), "UPDATE refresh_tokens SET expire_time = now() - interval '1 second'")
	require.NoError(t, err)
	_, err = refresh(b, acct.tokens.GetRefreshToken())
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
}

func TestAccessTokenExpires(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	b := setup(t, withNow(clock))
	acct := b.signUp(t, uniqueEmail())
	require.True(t, b.live(acct.tokens.GetAccessToken()))
	now = now.Add(b.cfg.AccessTokenTTL + 10*time.Second)
	require.False(t, b.live(acct.tokens.GetAccessToken()))
}

func TestLogoutRevokesAtTheEdge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := b.signUp(t, uniqueEmail())
	ctx := b.as(t, acct.tokens.GetAccessToken())

	_, err := b.srv.Logout(ctx, &authv1.LogoutRequest{})
	require.NoError(t, err)
	require.False(t, b.live(acct.tokens.GetAccessToken()), "rejected at once, not at expiry")
	_, err = refresh(b, acct.tokens.GetRefreshToken())
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
}

func TestLosingRedisNeitherLogsOutNorResurrects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	alive := b.signUp(t, uniqueEmail())
	ended := b.signUp(t, uniqueEmail())
	_, err := b.srv.Logout(b.as(t, ended.tokens.GetAccessToken()), &authv1.LogoutRequest{})
	require.NoError(t, err)

	// Forget every session this test mirrored, as a Redis flush would.
	keys, err := b.rdb.Keys(ctx, b.prefix+"session:*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 2)
	require.NoError(t, b.rdb.Del(ctx, keys...).Err())

	require.True(t, b.live(alive.tokens.GetAccessToken()), "PostgreSQL vouches for the live session")
	require.False(t, b.live(ended.tokens.GetAccessToken()), "and not for the ended one")
}

func TestListAndDeleteSessions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := b.signUp(t, uniqueEmail())
	second, err := b.srv.Login(context.Background(), &authv1.LoginRequest{Email: acct.email, Password: acct.password})
	require.NoError(t, err)
	ctx := b.as(t, acct.tokens.GetAccessToken())
	var other string

	scenario.Step(t, "list both sessions", func(t *testing.T) {
		list, err := b.srv.ListSessions(ctx, &authv1.ListSessionsRequest{})
		require.NoError(t, err)
		require.Len(t, list.GetSessions(), 2)
		for _, s := range list.GetSessions() {
			if !s.GetCurrent() {
				other = s.GetId()
			}
		}
		require.NotEmpty(t, other)
	})
	// Someone else's session does not exist, as far as this user can tell.
	scenario.Step(t, "a stranger cannot delete it", func(t *testing.T) {
		stranger := b.signUp(t, uniqueEmail())
		_, err := b.srv.DeleteSession(b.as(t, stranger.tokens.GetAccessToken()), &authv1.DeleteSessionRequest{SessionId: other})
		require.Equal(t, fault.NotFound, fault.KindOf(err))
		require.True(t, b.live(second.GetAccessToken()))
	})
	scenario.Step(t, "its owner deletes it, and only it ends", func(t *testing.T) {
		_, err := b.srv.DeleteSession(ctx, &authv1.DeleteSessionRequest{SessionId: other})
		require.NoError(t, err)
		require.False(t, b.live(second.GetAccessToken()))
		require.True(t, b.live(acct.tokens.GetAccessToken()))

		list, err := b.srv.ListSessions(ctx, &authv1.ListSessionsRequest{})
		require.NoError(t, err)
		require.Len(t, list.GetSessions(), 1)
		require.True(t, list.GetSessions()[0].GetCurrent())
	})
}
