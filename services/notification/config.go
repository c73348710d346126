package notification

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// settings are the notification service's own configuration, read from BACKPLANE_SENDGRID_*,
// BACKPLANE_EMAIL_FROM and BACKPLANE_NOTIFY_* in loadSettings.
type settings struct {
	// sendgridAPIKey turns on delivery through SendGrid; empty writes emails to the dev
	// mailbox instead.
	sendgridAPIKey string
	// sendgridBaseURL is SendGrid's API root; tests point it at a local stand-in.
	sendgridBaseURL string
	// emailFrom is the sender of every email.
	emailFrom *mail.Address
	// webhookKey verifies SendGrid's signed event webhook; nil refuses every webhook call.
	webhookKey *ecdsa.PublicKey
	// signingKey signs unsubscribe tokens; nil makes the service generate one per process.
	signingKey []byte
	// maxAttempts is how many times an email is tried before it is failed for good.
	maxAttempts int
	// retryBase is the wait before the first retry; each later one doubles it.
	retryBase time.Duration
	// retryMax caps the doubled wait.
	retryMax time.Duration
	// workers is how many deliveries run at once in this process; 0 runs none.
	workers int
	// lease is how long a claimed email stays with its worker before another may take it.
	lease time.Duration
	// pollInterval is how often an idle worker looks for due emails that another replica
	// accepted or whose retry came due.
	pollInterval time.Duration
}

// defaultSettings are those used when no variable is set: dev mode, mailbox delivery.
func defaultSettings() settings {
	return settings{
		sendgridBaseURL: "https://api.sendgrid.com",
		emailFrom:       &mail.Address{Name: "Backplane", Address: "no-reply@backplane.localhost"},
		maxAttempts:     8,
		retryBase:       time.Second,
		retryMax:        5 * time.Minute,
		workers:         4,
		lease:           time.Minute,
		pollInterval:    time.Second,
	}
}

// loadSettings reads the settings through getenv, reporting every bad variable by name.
func loadSettings(getenv func(string) string) (settings, error) {
	s := defaultSettings()
	var errs []error
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }

	s.sendgridAPIKey = get("BACKPLANE_SENDGRID_API_KEY")
	if v := get("BACKPLANE_SENDGRID_BASE_URL"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("BACKPLANE_SENDGRID_BASE_URL must be an http(s) URL such as https://api.sendgrid.com"))
		} else {
			s.sendgridBaseURL = strings.TrimRight(v, "/")
		}
	}
	if v := get("BACKPLANE_EMAIL_FROM"); v != "" {
		addr, err := mail.ParseAddress(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("BACKPLANE_EMAIL_FROM must be an address such as \"Backplane <no-reply@example.com>\": %w", err))
		} else {
			s.emailFrom = addr
		}
	} else if s.sendgridAPIKey != "" {
		errs = append(errs, errors.New("BACKPLANE_EMAIL_FROM is required when BACKPLANE_SENDGRID_API_KEY is set"))
	}
	if v := get("BACKPLANE_SENDGRID_WEBHOOK_PUBLIC_KEY"); v != "" {
		key, err := parseWebhookKey(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("BACKPLANE_SENDGRID_WEBHOOK_PUBLIC_KEY: %w", err))
		}
		s.webhookKey = key
	}
	if v := get("BACKPLANE_NOTIFY_SIGNING_KEY"); v != "" {
		if len(v) < 32 {
			errs = append(errs, errors.New("BACKPLANE_NOTIFY_SIGNING_KEY must be at least 32 characters"))
		}
		s.signingKey = []byte(v)
	}
	s.maxAttempts = readInt(get, "BACKPLANE_NOTIFY_MAX_ATTEMPTS", s.maxAttempts, 1, &errs)
	s.workers = readInt(get, "BACKPLANE_NOTIFY_WORKERS", s.workers, 0, &errs)
	s.retryBase = readDuration(get, "BACKPLANE_NOTIFY_RETRY_BASE", s.retryBase, &errs)
	s.retryMax = readDuration(get, "BACKPLANE_NOTIFY_RETRY_MAX", s.retryMax, &errs)
	s.lease = readDuration(get, "BACKPLANE_NOTIFY_LEASE", s.lease, &errs)
	s.pollInterval = readDuration(get, "BACKPLANE_NOTIFY_POLL_INTERVAL", s.pollInterval, &errs)
	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	return s, s.validate()
}

// validate checks the relations between settings that each parsed on its own.
func (s settings) validate() error {
	var errs []error
	if s.retryMax < s.retryBase {
		errs = append(errs, errors.New("BACKPLANE_NOTIFY_RETRY_MAX must not be below BACKPLANE_NOTIFY_RETRY_BASE"))
	}
	// A send is given at most half the lease (see sendTimeout), and must have a chance
	// of finishing: a lease under two seconds leaves too little.
	if s.lease < 2*time.Second {
		errs = append(errs, errors.New("BACKPLANE_NOTIFY_LEASE must be at least 2s"))
	}
	return errors.Join(errs...)
}

// sendTimeout bounds one call to SendGrid. Half the lease, so that a call that times out
// is over well before another replica may take the email over: the margin is what keeps
// a slow send from becoming a second send.
func (s settings) sendTimeout() time.Duration { return s.lease / 2 }

func readInt(get func(string) string, name string, def, minimum int, errs *[]error) int {
	v := get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minimum {
		*errs = append(*errs, fmt.Errorf("%s must be an integer of at least %d", name, minimum))
		return def
	}
	return n
}

func readDuration(get func(string) string, name string, def time.Duration, errs *[]error) time.Duration {
	v := get(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		*errs = append(*errs, fmt.Errorf("%s must be a positive duration such as 1s or 5m", name))
		return def
	}
	return d
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
