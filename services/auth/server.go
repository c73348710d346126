package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services/auth/password"
)

// Server implements authv1.AuthServiceServer.
type Server struct {
	authv1.UnimplementedAuthServiceServer

	cfg       Config
	log       *slog.Logger
	publicURL string
	store     *store
	keys      *keyring
	issuer    *authn.Issuer
	verifier  *authn.Verifier
	sessions  *authn.LiveSessions
	lockout   *lockout
	hasher    *password.Hasher
	policy    *password.Policy
	notifier  notifier
	now       func() time.Time
	// jobs inserts the security emails in the transactions that cause them and, once
	// started, works them (jobs.go).
	jobs *jobs.Client
}

var _ authv1.AuthServiceServer = (*Server)(nil)

// New builds the server from its configuration and the process's dependencies: it loads
// (or, on the first start, creates) the signing keys. Security emails go through the
// notification service, deps.Peers["notification"]; that connection carries the
// process's service credential, which opens its INTERNAL Send.
func New(ctx context.Context, cfg Config, deps service.Deps) (*Server, error) {
	conn := deps.Peers["notification"]
	if conn == nil {
		return nil, errors.New("auth: no connection to the notification service")
	}
	return newServer(ctx, cfg, deps, wiring{notifier: notificationClient{client: notificationv1.NewNotificationServiceClient(conn)}})
}

// wiring is what New derives and tests replace: the edge to the notification service,
// the password hasher, the Redis key prefix and the clock. Zero fields take production
// values, except notifier.
type wiring struct {
	notifier notifier
	// hasher hashes passwords; nil builds one with OWASP's parameters and
	// Config.PasswordHashConcurrency concurrent hashes.
	hasher *password.Hasher
	// redisPrefix starts every Redis key the service writes ("backplane:" by default);
	// tests set their own to keep apart on the shared Redis.
	redisPrefix string
	// now is the clock; time.Now when nil.
	now func() time.Time
}

func newServer(ctx context.Context, cfg Config, deps service.Deps, w wiring) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil || deps.DB == nil || deps.Redis == nil || w.notifier == nil {
		return nil, errors.New("auth: Logger, DB, Redis and a notifier are required")
	}
	if deps.PublicURL == "" || deps.Issuer == "" {
		return nil, errors.New("auth: the public URL, which emails link to, and the token issuer are required")
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.redisPrefix == "" {
		w.redisPrefix = "backplane:"
	}
	if w.hasher == nil {
		var err error
		// Zero hashes on every core, on threads of lowered priority, so the API still gets
		// the CPU first (a hash starved there is computed again at normal priority).
		opts := []password.HasherOption{password.WithLogger(deps.Logger.With("service", "auth"))}
		if deps.MeterProvider != nil {
			opts = append(opts, password.WithMeterProvider(deps.MeterProvider))
		}
		if w.hasher, err = password.NewHasher(ctx, password.OWASP, cfg.PasswordHashConcurrency, opts...); err != nil {
			return nil, err
		}
	}
	log := deps.Logger.With("service", "auth")
	if len(cfg.KeyEncryptionKey) == 0 {
		log.WarnContext(ctx, "BACKPLANE_KEY_ENCRYPTION_KEY is unset: token-signing keys are stored unsealed")
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		publicURL: strings.TrimRight(deps.PublicURL, "/"),
		store:     newStore(deps.DB, newUserCache(w.now)),
		hasher:    w.hasher,
		policy:    password.NewPolicy(),
		notifier:  w.notifier,
		now:       w.now,
		lockout: &lockout{
			rdb: deps.Redis, prefix: w.redisPrefix + "auth:login:",
			max: cfg.LoginMaxFailures, window: cfg.LoginFailureWindow,
		},
	}
	var err error
	if s.jobs, err = newJobs(s, deps); err != nil {
		return nil, err
	}
	s.store.jobs = s.jobs
	if s.keys, err = newKeyring(s.store, cfg.KeyEncryptionKey, cfg.SigningKeyRotation, cfg.AccessTokenTTL, w.now); err != nil {
		return nil, err
	}
	ks, err := s.keys.load(ctx)
	if err != nil {
		return nil, err
	}
	if s.issuer, err = authn.NewIssuer(authn.IssuerConfig{Issuer: deps.Issuer, Audience: cfg.Audience, TTL: cfg.AccessTokenTTL, Now: w.now}, ks); err != nil {
		return nil, err
	}
	s.sessions = authn.NewLiveSessions(deps.Redis,
		authn.WithKeyPrefix(w.redisPrefix+"session:"),
		authn.WithSessionRecords(sessionRecords{s.store, w.now}),
		authn.WithSessionClock(w.now))
	s.verifier, err = authn.NewVerifier(authn.VerifierConfig{
		Issuer: deps.Issuer, Audience: cfg.Audience,
		Keys: authn.IssuerJWKS{Issuer: s.issuer}, Sessions: s.sessions, Now: w.now,
		MaxTokenLifetime: cfg.AccessTokenTTL,
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

// Jobs is the service's River client: started with the service, it sends the security
// emails its requests queue.
func (s *Server) Jobs() *jobs.Client { return s.jobs }
