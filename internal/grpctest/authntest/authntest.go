// Package authntest gives a service's tests the authentication every Backplane server
// runs (internal/authn: access tokens checked against a key set and live sessions, API
// keys, service tokens), with a key set of the test's own standing in for the auth
// service's, so that calls through [grpctest] meet the same checks as in production.
//
// It lives apart from grpctest because authn's own tests use grpctest; grpctest's tests
// (TestWithAuthenticatorChecksCallers) check it.
package authntest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/identity"
)

// Issuer is the issuer of the access tokens [Authn] signs.
const Issuer = "https://auth.backplane.test"

// ServiceSecret signs the service tokens of the tests' services.
const ServiceSecret = "0123456789abcdef0123456789abcdef"

// Config is what [New] needs.
type Config struct {
	// Redis keeps the live sessions, under keys of the test's own, deleted when it ends.
	// Required.
	Redis redis.UniversalClient
	// APIKeys resolves API keys (bpk_...); nil refuses every key.
	APIKeys authn.Introspector
	// FollowSessionEnds hands the interceptor a feed of ended sessions, as production
	// servers have, so that a stream ends within a second of its session ending.
	FollowSessionEnds bool
}

// Authn is the authentication of a test's servers, and the credentials to pass it.
type Authn struct {
	// Interceptor goes in each server's authentication slot ([Authn.Option]).
	Interceptor *authn.Interceptor
	// Issuer signs access tokens.
	Issuer *authn.Issuer
	// Sessions are the live sessions the access tokens belong to.
	Sessions *authn.LiveSessions
	// Services signs and checks service tokens: PerRPCCredentials(name) is how the
	// service name calls another's INTERNAL RPCs.
	Services *authn.HMACServiceTokens

	// keys sign every token, whatever its lifetime (see [Authn.SignIn]).
	keys *authn.KeySet
}

// New builds the authentication with a fresh key set.
func New(t testing.TB, cfg Config) *Authn {
	t.Helper()
	if cfg.Redis == nil {
		t.Fatal("authntest: Config.Redis is required")
	}
	keys := cfg.APIKeys
	if keys == nil {
		keys = NoKeys{}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	set, err := authn.NewKeySet(authn.SigningKey{ID: authn.KeyID(pub), Private: priv})
	must(t, err)
	a := &Authn{keys: set}
	a.Issuer, err = authn.NewIssuer(authn.IssuerConfig{Issuer: Issuer, Audience: authn.Audience, TTL: time.Hour}, set)
	must(t, err)
	prefix := "authntest:" + rand.Text() + ":"
	t.Cleanup(func() {
		stale, _ := cfg.Redis.Keys(context.Background(), prefix+"*").Result()
		if len(stale) > 0 {
			_ = cfg.Redis.Del(context.Background(), stale...).Err()
		}
	})
	a.Sessions = authn.NewLiveSessions(cfg.Redis, authn.WithKeyPrefix(prefix))
	verifier, err := authn.NewVerifier(authn.VerifierConfig{
		Issuer: Issuer, Audience: authn.Audience, Keys: authn.IssuerJWKS{Issuer: a.Issuer}, Sessions: a.Sessions,
	})
	must(t, err)
	a.Services, err = authn.NewHMACServiceTokens([]byte(ServiceSecret), time.Minute, nil)
	must(t, err)
	icfg := authn.InterceptorConfig{
		Tokens: verifier, APIKeys: keys, Services: a.Services, Logger: slog.New(slog.DiscardHandler),
	}
	if cfg.FollowSessionEnds {
		ends := authn.NewSessionFeed(a.Sessions, authn.SessionFeedConfig{})
		must(t, ends.Start(context.Background()))
		t.Cleanup(func() { _ = ends.Close(context.Background()) })
		icfg.SessionEnds = ends
	}
	a.Interceptor, err = authn.NewInterceptor(icfg)
	must(t, err)
	return a
}

// Option puts the interceptor in a grpctest server's authentication slot.
func (a *Authn) Option() grpctest.Option { return grpctest.WithAuthenticator(a.Interceptor) }

// AccessToken signs in user: a live session, and an access token for it holding the
// user role and roles.
func (a *Authn) AccessToken(t testing.TB, user uuid.UUID, roles ...string) string {
	t.Helper()
	token, _ := a.SignIn(t, user, time.Hour, roles...)
	return token
}

// SignIn starts a live session of user, an hour long, and returns an access token for
// it that expires after ttl, holding the user role and roles, and the session's id (for
// a test to end it).
func (a *Authn) SignIn(t testing.TB, user uuid.UUID, ttl time.Duration, roles ...string) (token, sessionID string) {
	t.Helper()
	issuer := a.Issuer
	if ttl != time.Hour {
		var err error
		issuer, err = authn.NewIssuer(authn.IssuerConfig{Issuer: Issuer, Audience: authn.Audience, TTL: ttl}, a.keys)
		must(t, err)
	}
	sessionID = uuid.NewString()
	must(t, a.Sessions.MarkLive(context.Background(), sessionID, time.Now().Add(time.Hour)))
	token, _, err := issuer.Issue(user.String(), sessionID, append([]string{authn.RoleUser}, roles...))
	must(t, err)
	return token, sessionID
}

// NoKeys refuses every API key, for tests that sign in with access tokens.
type NoKeys struct{}

// Introspect refuses key.
func (NoKeys) Introspect(context.Context, string) (identity.Principal, error) {
	return identity.Principal{}, authn.ErrInvalidToken
}

var _ authn.Introspector = NoKeys{}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("authntest: %v", err)
	}
}
