package notification

import (
	"crypto/ecdsa"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/mesh"
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
	pool       *deliveryPool
	now        func() time.Time
}

var _ notificationv1.NotificationServiceServer = (*Server)(nil)

// New builds the service from the process's dependencies, reading its own settings
// through deps.Getenv. A bad setting is an error naming the variable.
func New(deps mesh.Deps) (*Server, error) {
	getenv := deps.Getenv
	if getenv == nil {
		// No settings given: the defaults, never the process environment behind the
		// runner's back.
		getenv = func(string) string { return "" }
	}
	s, err := loadSettings(getenv)
	if err != nil {
		return nil, err
	}
	return newServer(deps, s)
}

// newServer builds the service with explicit settings; tests call it directly.
func newServer(deps mesh.Deps, s settings) (*Server, error) {
	log := deps.Logger.With("service", "notification")
	cat, err := newCatalog(deps.Config.PublicURL)
	if err != nil {
		return nil, err
	}
	key := s.signingKey
	if key == nil {
		// A random key rather than a fixed dev key: a fixed one is public, and a
		// deployment that forgot the variable would accept forged unsubscribe links.
		// The price is that links die with the process and differ between replicas.
		key = make([]byte, 32)
		_, _ = rand.Read(key) // crypto/rand.Read never fails
		log.Warn("BACKPLANE_NOTIFY_SIGNING_KEY is not set: unsubscribe links are signed with a random key and stop working when this process restarts; set it in production")
	}
	if s.webhookKey == nil {
		log.Warn("BACKPLANE_SENDGRID_WEBHOOK_PUBLIC_KEY is not set: SendGrid event webhooks are refused")
	}
	st := newStore(deps.DB)
	l := links{publicURL: deps.Config.PublicURL, signer: tokenSigner{key: key}}

	var m mailer
	if s.sendgridAPIKey != "" {
		m = newSendgridMailer(s)
	} else {
		dir := filepath.Join(deps.Config.DataDir, "mailbox")
		log.Info("BACKPLANE_SENDGRID_API_KEY is not set: emails are written to the dev mailbox", "dir", dir)
		m = &mailboxMailer{dir: dir, from: s.emailFrom, log: log, now: time.Now}
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
	return &Server{
		log:        log,
		store:      st,
		catalog:    cat,
		links:      l,
		webhookKey: s.webhookKey,
		feed:       &inboxFeed{rdb: deps.Redis, log: log},
		pool: &deliveryPool{
			store: st, mailer: m, settings: s, links: l, log: log,
			lookupEmail: lookup, wake: make(chan struct{}, 1), jitter: defaultJitter, outcomes: outcomes,
		},
		now: time.Now,
	}, nil
}

// parseID reads a resource id; a malformed one cannot name a row, so it is not found.
func parseID(s string) (uuid.UUID, bool) {
	id, err := uuid.Parse(s)
	return id, err == nil
}
