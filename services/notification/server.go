package notification

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/service"
)

// Server implements notificationv1.NotificationServiceServer.
type Server struct {
	notificationv1.UnimplementedNotificationServiceServer
	log        *slog.Logger
	store      *store
	catalog    *catalog
	links      links
	webhookKey *ecdsa.PublicKey
	feed       *inboxFeed
	// jobs inserts email jobs, and works them once started (service.go).
	jobs *jobs.Client
	// deliverer does the work of email jobs; newJobs gives it to each client's worker.
	deliverer *deliverer
	cfg       Config
	deps      service.Deps
	now       func() time.Time
}

var _ notificationv1.NotificationServiceServer = (*Server)(nil)

// New builds the server from its configuration and the process's dependencies, with the
// River client that inserts its jobs. The client starts working them with the service
// (service.go), not here, so tests can build a server and run workers only when they
// want them.
func New(ctx context.Context, cfg Config, deps service.Deps) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil || deps.DB == nil || deps.Redis == nil {
		return nil, errors.New("notification: Logger, DB and Redis are required")
	}
	log := deps.Logger.With("service", "notification")
	cat, err := newCatalog(deps.PublicURL)
	if err != nil {
		return nil, err
	}
	key := cfg.SigningKey
	if key == nil {
		// A random key rather than a fixed dev key: a fixed one is public, and a
		// deployment that forgot the variable would accept forged unsubscribe links.
		// The price is that links die with the process and differ between replicas.
		key = make([]byte, 32)
		_, _ = rand.Read(key) // crypto/rand.Read never fails
		log.WarnContext(ctx, "BACKPLANE_NOTIFY_SIGNING_KEY is not set: unsubscribe links are signed with a random key and stop working when this process restarts; set it in production")
	}
	if cfg.WebhookKey == nil {
		log.WarnContext(ctx, "BACKPLANE_SENDGRID_WEBHOOK_PUBLIC_KEY is not set: SendGrid event webhooks are refused")
	}
	st := newStore(deps.DB, nil)
	l := links{publicURL: deps.PublicURL, signer: tokenSigner{key: key}}

	var m mailer
	if cfg.SendgridAPIKey != "" {
		m = newSendgridMailer(cfg)
	} else {
		dir := filepath.Join(deps.DataDir, "mailbox")
		log.InfoContext(ctx, "BACKPLANE_SENDGRID_API_KEY is not set: emails are written to the dev mailbox", "dir", dir)
		m = &mailboxMailer{dir: dir, from: cfg.EmailFrom, log: log, now: time.Now}
	}
	mp := deps.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	outcomes, err := mp.Meter("github.com/backplane/backplane/services/notification").Int64Counter(
		"backplane.notification.email.attempts",
		metric.WithDescription("Email delivery attempts, by outcome: sent, retried, failed or suppressed."),
	)
	if err != nil {
		return nil, err
	}
	lookup := noAddressBook
	if conn := deps.Peers["auth"]; conn != nil {
		// The mesh's connections carry this process's service credential, which
		// LookupUser requires.
		lookup = authAddressBook(conn)
	}
	s := &Server{
		log:        log,
		store:      st,
		catalog:    cat,
		links:      l,
		webhookKey: cfg.WebhookKey,
		feed:       newInboxFeed(deps.Redis, log),
		deliverer: &deliverer{
			store: st, mailer: m, links: l, log: log, lookupEmail: lookup,
			maxAttempts: cfg.MaxAttempts, lease: cfg.Lease, outcomes: outcomes,
			tracer: tracerOf(deps),
		},
		cfg:  cfg,
		deps: deps,
		now:  time.Now,
	}
	if s.jobs, err = s.newJobs(cfg.Workers); err != nil {
		return nil, err
	}
	// The store inserts each email's job in the transaction that stores the email.
	st.jobs = s.jobs
	return s, nil
}

// newJobs builds a River client of the service working up to workers jobs at once:
// New's own, and in tests further ones, each standing for a replica's workers.
func (s *Server) newJobs(workers int) (*jobs.Client, error) {
	deps := s.deps
	deps.Logger = s.log
	return jobs.New(s.deps.DB, jobsConfig(s.cfg, workers, newWorkers(s.deliverer, s.store), deps))
}

// parseID reads a resource id; a malformed one cannot name a row, so it is not found.
func parseID(s string) (uuid.UUID, bool) {
	id, err := uuid.Parse(s)
	return id, err == nil
}
