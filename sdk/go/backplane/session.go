package backplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

const (
	// refreshAhead is how long before the access token's expiry the client replaces it,
	// so that a call never leaves with a token that expires on the way.
	refreshAhead = 30 * time.Second
	// refreshTimeout bounds a refresh. The refresh does not end with the call that
	// started it, because other calls wait for it too.
	refreshTimeout = 30 * time.Second
)

// errNoTokens is a sign-in answer without tokens.
var errNoTokens = errors.New("backplane: the answer carried no tokens")

// tokenState is the session as calls read it, swapped whole so that the hot path
// reads it without a lock.
type tokenState struct {
	tokens Tokens
	// bearer is the authorization metadata value, built once per token.
	bearer string
}

func newTokenState(t Tokens) *tokenState {
	c := &tokenState{tokens: t}
	if t.AccessToken != "" {
		c.bearer = "Bearer " + t.AccessToken
	}
	return c
}

// session holds a signed-in user's tokens and replaces the access token before it
// expires. The server ends a session whose spent refresh token is presented again, so
// every refresh goes through one singleflight: however many calls find the token stale
// at once, one RefreshToken call is made and all of them use its answer.
type session struct {
	auth  authv1.AuthServiceClient
	store TokenStore
	now   func() time.Time

	creds  atomic.Pointer[tokenState] // nil until loaded from the store
	mu     sync.Mutex                 // serialises changes to creds and writes to the store
	flight singleflight.Group
}

// current returns the session's credentials, reading the store on first use.
func (s *session) current(ctx context.Context) (*tokenState, error) {
	if c := s.creds.Load(); c != nil {
		return c, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.creds.Load(); c != nil {
		return c, nil
	}
	t, err := s.store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("backplane: load tokens: %w", err)
	}
	c := newTokenState(t)
	s.creds.Store(c)
	return c, nil
}

// fresh reports whether c's access token can be sent now. An expiry the store did not
// record counts as fresh: the server's refusal will then trigger the refresh.
func (s *session) fresh(c *tokenState) bool {
	if c.tokens.AccessToken == "" {
		return false
	}
	return c.tokens.AccessTokenExpiry.IsZero() || s.now().Before(c.tokens.AccessTokenExpiry.Add(-refreshAhead))
}

// bearer returns the authorization value for a call that needs a credential,
// refreshing the access token first when it is about to expire. It returns "" when
// nobody is signed in.
func (s *session) bearer(ctx context.Context) (string, error) {
	c, err := s.current(ctx)
	if err != nil {
		return "", err
	}
	if s.fresh(c) || c.tokens.RefreshToken == "" {
		return c.bearer, nil
	}
	return s.refresh(ctx, c.bearer)
}

// freshBearer returns the authorization value if a fresh access token is at hand, and
// "" otherwise; it never refreshes. Public RPCs use it: they need no credential.
func (s *session) freshBearer(ctx context.Context) string {
	c, err := s.current(ctx)
	if err != nil || !s.fresh(c) {
		return ""
	}
	return c.bearer
}

// refresh replaces the access token that stale carried and returns the new
// authorization value. Calls arriving while a refresh is in flight wait for it; a call
// arriving after it ended finds stale already replaced and uses the new token.
func (s *session) refresh(ctx context.Context, stale string) (string, error) {
	ch := s.flight.DoChan("refresh", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		return s.doRefresh(rctx, stale)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		bearer, _ := r.Val.(string)
		return bearer, nil
	case <-ctx.Done():
		return "", status.FromContextError(ctx.Err()).Err()
	}
}

func (s *session) doRefresh(ctx context.Context, stale string) (string, error) {
	c, err := s.current(ctx)
	if err != nil {
		return "", err
	}
	if c.bearer != stale && s.fresh(c) {
		return c.bearer, nil
	}
	spent := c.tokens.RefreshToken
	if spent == "" {
		return "", status.Error(codes.Unauthenticated, "the session has ended: sign in again")
	}
	// Repeating a refresh is safe although RefreshToken is a POST: if the first attempt
	// never ran, the token is unspent; if it ran and its answer was lost, the server
	// answers a repeat within its grace window with a pair of its own, and after it
	// the session is lost whether or not the client repeats.
	resp, err := s.auth.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: spent}, Idempotent())
	if status.Code(err) == codes.Unauthenticated {
		// The session has ended (signed out elsewhere, revoked, expired): forget it, so
		// that the next start does not present a dead token.
		if serr := s.replace(ctx, spent, Tokens{}); serr != nil {
			return "", errors.Join(err, serr)
		}
		return "", err
	}
	if err != nil {
		return "", err
	}
	t, err := tokensFrom(resp, s.now())
	if err != nil {
		return "", err
	}
	if err := s.replace(ctx, spent, t); err != nil {
		return "", err
	}
	return s.creds.Load().bearer, nil
}

// replace swaps in t, unless the session changed meanwhile (a sign-in or sign-out
// while the refresh was in flight), in which case the refresh's answer belongs to a
// session that is no longer this client's and is dropped.
func (s *session) replace(ctx context.Context, spent string, t Tokens) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.creds.Load(); c != nil && c.tokens.RefreshToken != spent {
		return nil
	}
	s.creds.Store(newTokenState(t))
	if err := s.store.Save(ctx, t); err != nil {
		return fmt.Errorf("backplane: save tokens: %w", err)
	}
	return nil
}

// set replaces the session's tokens with those of a sign-in or sign-out.
func (s *session) set(ctx context.Context, t Tokens) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds.Store(newTokenState(t))
	if err := s.store.Save(ctx, t); err != nil {
		return fmt.Errorf("backplane: save tokens: %w", err)
	}
	return nil
}

// tokenPair is the token fields, as every answer that signs in spells them: SignUp's,
// Login's, RefreshToken's and VerifyEmail's.
type tokenPair interface {
	GetAccessToken() string
	GetRefreshToken() string
	GetExpiresIn() int64
}

// tokensFrom reads the tokens out of an answer that signs in. The expiry is counted
// from now, on this machine's clock, so that a skewed clock does not matter.
func tokensFrom(resp any, now time.Time) (Tokens, error) {
	p, _ := resp.(tokenPair)
	if p == nil || p.GetAccessToken() == "" || p.GetRefreshToken() == "" {
		return Tokens{}, errNoTokens
	}
	t := Tokens{AccessToken: p.GetAccessToken(), RefreshToken: p.GetRefreshToken()}
	if secs := p.GetExpiresIn(); secs > 0 {
		t.AccessTokenExpiry = now.Add(time.Duration(secs) * time.Second)
	}
	return t, nil
}
