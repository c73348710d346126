package backplane_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/sdk/go/backplane"
)

// together runs call from n goroutines released at the same instant and returns the
// errors they got.
func together(n int, call func() error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = call()
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func TestSignInKeepsTheSessionInTheStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	email := signUp(t, newClient(t, target))

	store := &backplane.MemoryStore{}
	c := newClient(t, target, backplane.WithTokenStore(store))
	user, err := c.SignIn(ctx, email, password)
	require.NoError(t, err)
	require.Equal(t, email, user.GetEmail())

	saved, err := store.Load(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, saved.AccessToken)
	require.NotEmpty(t, saved.RefreshToken)
	require.WithinDuration(t, time.Now().Add(15*time.Minute), saved.AccessTokenExpiry, time.Minute)
	require.NotContains(t, saved.String(), saved.RefreshToken, "tokens print redacted")

	me, err := c.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	require.Equal(t, user.GetId(), me.GetUser().GetId())

	// A second client on the same store, as the next run of a desktop app, is signed in.
	next := newClient(t, target, backplane.WithTokenStore(store))
	me, err = next.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	require.Equal(t, email, me.GetUser().GetEmail())

	require.NoError(t, next.SignOut(ctx))
	saved, err = store.Load(ctx)
	require.NoError(t, err)
	require.True(t, saved.IsZero(), "sign-out empties the store")
	_, err = next.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	requireCode(t, codes.Unauthenticated, err)
}

func TestWrongPasswordIsUnauthenticated(t *testing.T) {
	t.Parallel()
	email := signUp(t, newClient(t, target))
	c := newClient(t, target)
	_, err := c.SignIn(t.Context(), email, "not the password")
	requireCode(t, codes.Unauthenticated, err)
}

// An access token about to expire is replaced before calls use it, by exactly one
// refresh however many calls find it stale at once. The shared server runs without a
// reuse grace window: a second refresh with the same token would end the session, and
// the calls after it would fail.
func TestConcurrentCallsAcrossExpiryRefreshOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var sent calls
	c := newClient(t, target, sent.option())
	var skew atomic.Int64
	backplane.SetClock(c, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	signUp(t, c)
	// signUp's own probe of whether sign-up signed in (it does not, by default) is no
	// call of this test's.
	refused := sent.of(getCurrentUserMethod, "Unauthenticated")
	getMe := func() error {
		_, err := c.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
		return err
	}
	require.NoError(t, getMe())
	require.Zero(t, sent.of(refreshMethod))

	for round := 1; round <= 3; round++ {
		// The client's clock passes the access token's expiry (15 minutes).
		skew.Add(int64(16 * time.Minute))
		for _, err := range together(48, getMe) {
			require.NoError(t, err, "round %d", round)
		}
		require.Equal(t, round, sent.of(refreshMethod), "one refresh per expiry, in round %d", round)
		require.Equal(t, round, sent.of(refreshMethod, "OK"))
	}
	require.Equal(t, refused, sent.of(getCurrentUserMethod, "Unauthenticated"), "no call left with a stale token")

	// The session is intact: no refresh token was presented twice.
	sessions, err := c.Auth.ListSessions(ctx, &authv1.ListSessionsRequest{})
	require.NoError(t, err)
	require.Len(t, sessions.GetSessions(), 1)
}

// A token the server refuses although the client thought it fresh (expired early,
// signed with a key since withdrawn, ...) is replaced by one refresh, and each refused
// call is retried once with the new token.
func TestRefusedTokenIsRefreshedOnceAndTheCallsRetried(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	first := &backplane.MemoryStore{}
	signUp(t, newClient(t, target, backplane.WithTokenStore(first)))
	tokens, err := first.Load(ctx)
	require.NoError(t, err)

	// The next run finds a token the server will refuse (its signature altered) that
	// the store says is good for ten more minutes, and a valid refresh token.
	store := &backplane.MemoryStore{}
	require.NoError(t, store.Save(ctx, backplane.Tokens{
		AccessToken:       tamper(tokens.AccessToken),
		AccessTokenExpiry: time.Now().Add(10 * time.Minute),
		RefreshToken:      tokens.RefreshToken,
	}))
	var sent calls
	c := newClient(t, target, backplane.WithTokenStore(store), sent.option())
	for _, err := range together(16, func() error {
		_, err := c.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
		return err
	}) {
		require.NoError(t, err)
	}
	require.Equal(t, 1, sent.of(refreshMethod))
	refused := sent.of(getCurrentUserMethod, "Unauthenticated")
	require.Positive(t, refused, "the altered token was sent and refused")
	require.Equal(t, 16, sent.of(getCurrentUserMethod, "OK"))
	require.Equal(t, 16+refused, sent.of(getCurrentUserMethod), "each refused call was retried once")

	saved, err := store.Load(ctx)
	require.NoError(t, err)
	require.NotEqual(t, tokens.RefreshToken, saved.RefreshToken, "the rotated refresh token is saved")
}

// A call refused with the old token after the refresh has already replaced it uses the
// new token: it does not refresh again (which, with the spent refresh token, would end
// the session).
func TestCallRefusedAfterTheRefreshUsesItsToken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	first := &backplane.MemoryStore{}
	signUp(t, newClient(t, target, backplane.WithTokenStore(first)))
	tokens, err := first.Load(ctx)
	require.NoError(t, err)
	tokens.AccessToken = tamper(tokens.AccessToken)

	// Two calls leave with the refused token. The first one's refusal is held until
	// the second has left; the second one's until the refresh the first started is done.
	var started atomic.Int32
	bothSent, refreshed := make(chan struct{}), make(chan struct{})
	wait := func(ch chan struct{}) {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Error("the calls did not interleave as planned")
		}
	}
	order := backplane.WithDialOptions(grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			var n int32
			if method == getCurrentUserMethod {
				if n = started.Add(1); n == 2 {
					close(bothSent)
				}
			}
			err := invoker(ctx, method, req, reply, cc, opts...)
			switch {
			case method == refreshMethod && err == nil:
				close(refreshed)
			case status.Code(err) == codes.Unauthenticated && n == 1:
				wait(bothSent)
			case status.Code(err) == codes.Unauthenticated && n == 2:
				wait(refreshed)
			}
			return err
		}))
	var sent calls
	c := newClient(t, target, backplane.WithTokenStore(storeWith(t, tokens)), order, sent.option())
	for _, err := range together(2, func() error {
		_, err := c.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
		return err
	}) {
		require.NoError(t, err)
	}
	require.Equal(t, 2, sent.of(getCurrentUserMethod, "Unauthenticated"))
	require.Equal(t, 1, sent.of(refreshMethod), "the late refusal found the token already replaced")
}

// When the session has ended on the server, the refresh cannot fix the refused call:
// the call fails UNAUTHENTICATED and the client forgets the dead session.
func TestEndedSessionIsForgotten(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := &backplane.MemoryStore{}
	var sent calls
	c := newClient(t, target, backplane.WithTokenStore(store), sent.option())
	signUp(t, c)
	tokens, err := store.Load(ctx)
	require.NoError(t, err)

	// The same session, signed out from elsewhere.
	elsewhere := &backplane.MemoryStore{}
	require.NoError(t, elsewhere.Save(ctx, tokens))
	require.NoError(t, newClient(t, target, backplane.WithTokenStore(elsewhere)).SignOut(ctx))

	// The edge learns of the ended session within a second.
	var last error
	require.Eventually(t, func() bool {
		_, last = c.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
		return last != nil
	}, 5*time.Second, 50*time.Millisecond)
	requireCode(t, codes.Unauthenticated, last)
	require.Equal(t, 1, sent.of(refreshMethod, "Unauthenticated"), "one refresh was tried, and refused")
	saved, err := store.Load(ctx)
	require.NoError(t, err)
	require.True(t, saved.IsZero(), "the dead session is forgotten")

	// Later calls go without a credential, and try no refresh.
	_, err = c.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	requireCode(t, codes.Unauthenticated, err)
	require.Equal(t, 1, sent.of(refreshMethod))
}

func TestAPIKeyClient(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	owner := newClient(t, target)
	email := signUp(t, owner)
	require.NoError(t, verifyAddress(ctx, owner, shared.dataDir, email))
	key, err := owner.Auth.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{DisplayName: "script", Scopes: []string{"profile:read"}})
	require.NoError(t, err)

	var sent calls
	c := newClient(t, target, backplane.WithAPIKey(key.GetSecret()), sent.option())
	me, err := c.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	require.Equal(t, email, me.GetUser().GetEmail())

	// A method the key has no scope for.
	_, err = c.Auth.ListApiKeys(ctx, &authv1.ListApiKeysRequest{})
	requireCode(t, codes.PermissionDenied, err)

	_, err = c.SignIn(ctx, email, password)
	require.ErrorIs(t, err, backplane.ErrAPIKeyClient)

	// A deleted key stops working within a second; nothing is refreshed.
	_, err = owner.Auth.DeleteApiKey(ctx, &authv1.DeleteApiKeyRequest{ApiKeyId: key.GetApiKey().GetId()})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err = c.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
		return err != nil
	}, 5*time.Second, 50*time.Millisecond)
	requireCode(t, codes.Unauthenticated, err)
	require.Zero(t, sent.of(refreshMethod))
}

// A store that fails is reported, not ignored: a desktop app that lost the rotated
// refresh token would present a spent one at its next start.
func TestStoreFailureIsReported(t *testing.T) {
	t.Parallel()
	email := signUp(t, newClient(t, target))
	broken := errors.New("keychain locked")
	c := newClient(t, target, backplane.WithTokenStore(failingStore{err: broken}))
	_, err := c.SignIn(t.Context(), email, password)
	require.ErrorIs(t, err, broken)
}

type failingStore struct{ err error }

func (s failingStore) Load(context.Context) (backplane.Tokens, error) { return backplane.Tokens{}, nil }
func (s failingStore) Save(context.Context, backplane.Tokens) error   { return s.err }

// tamper alters a JWT's signature so that the server refuses it.
func tamper(jwt string) string {
	b := []byte(jwt)
	last := len(b) - 2
	if b[last] == 'A' {
		b[last] = 'B'
	} else {
		b[last] = 'A'
	}
	return string(b)
}

// requireCode asserts that err is an *Error with code want.
func requireCode(t *testing.T, want codes.Code, err error) {
	t.Helper()
	var e *backplane.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, want, e.Code, "%v", err)
}
