package notification

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/jobs"
)

// Config holds the notification service's settings, each read from one environment
// variable named next to its field (the table is in README.md). The public URL, which
// links start with, and the data dir, which holds the dev mailbox, are the process's
// settings and arrive in service.Deps.
type Config struct {
	// SendgridAPIKey turns on delivery through SendGrid; empty writes emails to the dev
	// mailbox instead (BACKPLANE_SENDGRID_API_KEY).
	SendgridAPIKey string
	// SendgridBaseURL is SendGrid's API root; tests point it at a local stand-in
	// (BACKPLANE_SENDGRID_BASE_URL).
	SendgridBaseURL string
	// EmailFrom is the sender of every email (BACKPLANE_EMAIL_FROM).
	EmailFrom *mail.Address
	// WebhookKey verifies SendGrid's signed event webhook; nil refuses every webhook
	// call (BACKPLANE_SENDGRID_WEBHOOK_PUBLIC_KEY).
	WebhookKey *ecdsa.PublicKey
	// SigningKey signs unsubscribe tokens; nil makes the service generate one per
	// process (BACKPLANE_NOTIFY_SIGNING_KEY).
	SigningKey []byte
	// MaxAttempts is how many times an email is tried before it is failed for good
	// (BACKPLANE_NOTIFY_MAX_ATTEMPTS); the max attempts of its River job.
	MaxAttempts int
	// RetryBase is the wait before the first retry; each later one doubles it
	// (BACKPLANE_NOTIFY_RETRY_BASE). With RetryMax, the River client's backoff.
	RetryBase time.Duration
	// RetryMax caps the doubled wait (BACKPLANE_NOTIFY_RETRY_MAX).
	RetryMax time.Duration
	// Workers is how many jobs (deliveries) run at once in this process; 0 runs none,
	// and the process only inserts jobs for other replicas to work
	// (BACKPLANE_NOTIFY_WORKERS).
	Workers int
	// Lease is how long an attempt at an email may take before River takes its job
	// for lost and runs it again: River's job timeout and its rescue-after
	// (BACKPLANE_NOTIFY_LEASE). A send gets half of it.
	Lease time.Duration
	// PollInterval is how often idle workers look for jobs that became due, such as
	// retries; new jobs are announced at once (BACKPLANE_NOTIFY_POLL_INTERVAL).
	PollInterval time.Duration
	// MaxStreamsPerUser is how many notification streams one user may hold open at
	// once in this process; one more answers RESOURCE_EXHAUSTED
	// (BACKPLANE_NOTIFY_MAX_STREAMS_PER_USER). The count is per process: behind a
	// balancer of N replicas a user may hold up to N times as many.
	MaxStreamsPerUser int
}

// defaultConfig is the configuration when no variable is set: dev mode, mailbox
// delivery.
func defaultConfig() Config {
	return Config{
		SendgridBaseURL: "https://api.sendgrid.com",
		EmailFrom:       &mail.Address{Name: "Backplane", Address: "no-reply@backplane.localhost"},
		MaxAttempts:     8,
		RetryBase:       time.Second,
		RetryMax:        5 * time.Minute,
		Workers:         4,
		Lease:           time.Minute,
		PollInterval:    time.Second,
		// A user's tabs and devices, with room for a reconnect overlapping the stream
		// it replaces.
		MaxStreamsPerUser: 5,
	}
}

// LoadConfig reads the settings through env, with the rest of the process's
// configuration and before anything is opened. Every bad variable is reported, each
// error naming it.
func LoadConfig(env *config.Env) (Config, error) {
	d := defaultConfig()
	c := Config{
		SendgridAPIKey:  env.String("BACKPLANE_SENDGRID_API_KEY", ""),
		SendgridBaseURL: d.SendgridBaseURL,
		EmailFrom:       env.EmailAddress("BACKPLANE_EMAIL_FROM", d.EmailFrom),
		SigningKey:      env.Secret("BACKPLANE_NOTIFY_SIGNING_KEY", 32),
		MaxAttempts:     env.Int("BACKPLANE_NOTIFY_MAX_ATTEMPTS", d.MaxAttempts),
		RetryBase:       env.Duration("BACKPLANE_NOTIFY_RETRY_BASE", d.RetryBase),
		RetryMax:        env.Duration("BACKPLANE_NOTIFY_RETRY_MAX", d.RetryMax),
		Workers:         env.Int("BACKPLANE_NOTIFY_WORKERS", d.Workers),
		Lease:           env.Duration("BACKPLANE_NOTIFY_LEASE", d.Lease),
		PollInterval:    env.Duration("BACKPLANE_NOTIFY_POLL_INTERVAL", d.PollInterval),

		MaxStreamsPerUser: env.Int("BACKPLANE_NOTIFY_MAX_STREAMS_PER_USER", d.MaxStreamsPerUser),
	}
	if v := env.URL("BACKPLANE_SENDGRID_BASE_URL", "http", "https"); v != "" {
		c.SendgridBaseURL = strings.TrimRight(v, "/")
	}
	if c.SendgridAPIKey != "" && env.String("BACKPLANE_EMAIL_FROM", "") == "" {
		env.Invalid("BACKPLANE_EMAIL_FROM", "required when BACKPLANE_SENDGRID_API_KEY is set")
	}
	if v := env.String("BACKPLANE_SENDGRID_WEBHOOK_PUBLIC_KEY", ""); v != "" {
		key, err := parseWebhookKey(v)
		if err != nil {
			env.Invalid("BACKPLANE_SENDGRID_WEBHOOK_PUBLIC_KEY", err.Error())
		}
		c.WebhookKey = key
	}
	// A bad value reads as its default, so validate reports only what is wrong besides.
	if err := errors.Join(env.Err(), c.validate()); err != nil {
		return Config{}, err
	}
	return c, nil
}

// validate checks each setting's range and the relations between them.
func (c Config) validate() error {
	var errs []error
	if c.MaxAttempts < 1 {
		errs = append(errs, errors.New("BACKPLANE_NOTIFY_MAX_ATTEMPTS: must be at least 1"))
	}
	if c.Workers < 0 || c.Workers > river.QueueNumWorkersMax {
		errs = append(errs, fmt.Errorf("BACKPLANE_NOTIFY_WORKERS: must be from 0 to %d", river.QueueNumWorkersMax))
	}
	if c.RetryBase <= 0 {
		errs = append(errs, errors.New("BACKPLANE_NOTIFY_RETRY_BASE: must be positive, such as 1s"))
	}
	if c.RetryMax < c.RetryBase {
		errs = append(errs, errors.New("BACKPLANE_NOTIFY_RETRY_MAX: must not be below BACKPLANE_NOTIFY_RETRY_BASE"))
	}
	// A send is given at most half the lease (see sendTimeout), and must have a chance
	// of finishing: a lease under two seconds leaves too little.
	if c.Lease < 2*time.Second {
		errs = append(errs, errors.New("BACKPLANE_NOTIFY_LEASE: must be at least 2s"))
	}
	if c.PollInterval < time.Millisecond {
		errs = append(errs, errors.New("BACKPLANE_NOTIFY_POLL_INTERVAL: must be at least 1ms, such as 1s"))
	}
	if c.MaxStreamsPerUser < 1 {
		errs = append(errs, errors.New("BACKPLANE_NOTIFY_MAX_STREAMS_PER_USER: must be at least 1"))
	}
	return errors.Join(errs...)
}

// sendTimeout bounds one call to SendGrid. Half the lease, so that a call that times out
// is over well before River may run the job again elsewhere: the margin is what keeps a
// slow send from becoming a second send.
func (c Config) sendTimeout() time.Duration { return c.Lease / 2 }

// backoff is the retry schedule of email jobs: RetryBase doubled per failure up to
// RetryMax, spread by ±25 % so that emails failed together do not retry together.
func (c Config) backoff() jobs.Backoff {
	return jobs.Backoff{First: c.RetryBase, Max: c.RetryMax, Jitter: 0.25}
}

// parseWebhookKey reads SendGrid's verification key: base64 of a DER (PKIX) ECDSA public
// key. eventwebhook.ConvertPublicKeyBase64ToECDSA would panic on a key of another type,
// which must fail the start with a message instead.
func parseWebhookKey(b64 string) (*ecdsa.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("must be base64, as SendGrid shows it")
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errors.New("is not a public key")
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("is not an ECDSA public key")
	}
	return ec, nil
}
