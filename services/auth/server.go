package auth

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/services/auth/password"
)

// Server implements authv1.AuthServiceServer.
type Server struct {
	authv1.UnimplementedAuthServiceServer

	cfg      Config
	log      *slog.Logger
	store    *store
	keys     *keyring
	issuer   *authn.Issuer
	verifier *authn.Verifier
	sessions *authn.LiveSessions
	lockout  *lockout
	hasher   *password.Hasher
	policy   *password.Policy
	mailer   Mailer
	now      func() time.Time

	// background tracks emails being sent after their request has answered.
	background sync.WaitGroup
}

var _ authv1.AuthServiceServer = (*Server)(nil)

// Dependencies are what a Server is built from, besides its Config.
type Dependencies struct {
	Logger *slog.Logger
	DB     *pgxpool.Pool
	Redis  redis.UniversalClient
	Mailer Mailer
	// Hasher hashes passwords; nil builds one with OWASP's parameters and
	// Config.PasswordHashConcurrency concurrent hashes.
	Hasher *password.Hasher
	// RedisPrefix starts every Redis key the service writes ("backplane:" by default).
	RedisPrefix string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// New builds the server: it loads (or, on the first start, creates) the signing keys.
func New(ctx context.Context, cfg Config, d Dependencies) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if d.Logger == nil || d.DB == nil || d.Redis == nil || d.Mailer == nil {
		return nil, errors.New("auth: Logger, DB, Redis and Mailer are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.RedisPrefix == "" {
		d.RedisPrefix = "backplane:"
	}
	if d.Hasher == nil {
		var err error
		slots := cfg.PasswordHashConcurrency
		if slots == 0 {
			slots = max(1, runtime.GOMAXPROCS(0)-1)
		}
		if d.Hasher, err = password.NewHasher(password.OWASP, slots); err != nil {
			return nil, err
		}
	}
	s := &Server{
		cfg:    cfg,
		log:    d.Logger.With("service", "auth"),
		store:  newStore(d.DB),
		hasher: d.Hasher,
		policy: password.NewPolicy(),
		mailer: d.Mailer,
		now:    d.Now,
		lockout: &lockout{
			rdb: d.Redis, prefix: d.RedisPrefix + "auth:login:",
			max: cfg.LoginMaxFailures, window: cfg.LoginFailureWindow,
		},
	}
	var err error
	if s.keys, err = newKeyring(s.store, cfg.KeyEncryptionKey, cfg.SigningKeyRotation, cfg.AccessTokenTTL, d.Now); err != nil {
		return nil, err
	}
	ks, err := s.keys.load(ctx)
	if err != nil {
		return nil, err
	}
	if s.issuer, err = authn.NewIssuer(authn.IssuerConfig{Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.AccessTokenTTL, Now: d.Now}, ks); err != nil {
		return nil, err
	}
	s.sessions = authn.NewLiveSessions(d.Redis,
		authn.WithKeyPrefix(d.RedisPrefix+"session:"),
		authn.WithSessionRecords(sessionRecords{s.store, d.Now}),
		authn.WithSessionClock(d.Now))
	s.verifier, err = authn.NewVerifier(authn.VerifierConfig{
		Issuer: cfg.Issuer, Audience: cfg.Audience,
		Keys: authn.IssuerJWKS{Issuer: s.issuer}, Sessions: s.sessions, Now: d.Now,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Verifier checks access tokens against this server's own keys and sessions, for the
// enforcement interceptor of the process the auth service runs in.
func (s *Server) Verifier() *authn.Verifier { return s.verifier }

// Sessions is the live-session mirror, with PostgreSQL behind it. Verifiers elsewhere
// build their own over the same Redis.
func (s *Server) Sessions() *authn.LiveSessions { return s.sessions }

// APIKeys resolves API keys straight from the store, for the interceptor of the process
// the auth service runs in (wrap it in authn.NewCachedIntrospector).
func (s *Server) APIKeys() authn.Introspector { return localIntrospector{s} }

// KeepKeys reloads the signing keys every minute until ctx ends, so a rotation made by
// any replica is picked up by all.
func (s *Server) KeepKeys(ctx context.Context) {
	s.keys.keep(ctx, s.issuer, time.Minute, func(err error) {
		s.log.ErrorContext(ctx, "reload signing keys", "error", err)
	})
}

// Wait blocks until emails queued by finished requests have been handed over.
func (s *Server) Wait() { s.background.Wait() }

// sendMail hands an email to the mailer after the request has answered, so that a slow
// notification service neither delays the response nor, for ForgotPassword, reveals
// through timing whether an account exists.
func (s *Server) sendMail(ctx context.Context, m Mail) {
	ctx = context.WithoutCancel(ctx)
	s.background.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := s.mailer.Send(ctx, m); err != nil {
			// The data holds single-use links: log the template only.
			s.log.ErrorContext(ctx, "send security email", "template", m.Template, "user_id", m.UserID, "error", err)
		}
	})
}
