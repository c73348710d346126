package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/backplane/backplane/internal/authn"
)

// Config holds the auth service's settings. Each comes from one environment variable,
// named next to its field.
type Config struct {
	// PublicURL is where users reach the product; emails link to it (BACKPLANE_PUBLIC_URL,
	// read by the process).
	PublicURL string
	// Issuer is the iss claim of access tokens (BACKPLANE_JWT_ISSUER; PublicURL by default).
	Issuer string
	// Audience is the aud claim every service of the mesh expects ("backplane").
	Audience string
	// AccessTokenTTL is how long an access token lives (BACKPLANE_ACCESS_TOKEN_TTL, 15m).
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is how long a session lasts without a refresh
	// (BACKPLANE_REFRESH_TOKEN_TTL, 720h).
	RefreshTokenTTL time.Duration
	// RefreshReuseGrace is how long a just-spent refresh token may be presented again
	// (a client's concurrent retry) without ending the session
	// (BACKPLANE_REFRESH_REUSE_GRACE, 10s; 0 disables it).
	RefreshReuseGrace time.Duration
	// LoginMaxFailures is how many failed logins an account may have within
	// LoginFailureWindow before further attempts are refused (BACKPLANE_LOGIN_MAX_FAILURES, 5).
	LoginMaxFailures int
	// LoginFailureWindow is the window failed logins are counted in (15 minutes).
	LoginFailureWindow time.Duration
	// AdminEmails are the addresses whose accounts, once verified, hold the admin role
	// (BACKPLANE_ADMIN_EMAILS, comma-separated, lower-cased).
	AdminEmails []string
	// KeyEncryptionKey seals the token-signing private keys stored in PostgreSQL with
	// AES-256-GCM (BACKPLANE_KEY_ENCRYPTION_KEY, 32 bytes in base64; unset stores them
	// unsealed, for development).
	KeyEncryptionKey []byte
	// SigningKeyRotation is how long one key signs before the next takes over
	// (BACKPLANE_SIGNING_KEY_ROTATION, 720h).
	SigningKeyRotation time.Duration
	// PasswordHashConcurrency bounds how many argon2id computations run at once, so a
	// flood of logins queues instead of starving the rest of the process
	// (BACKPLANE_PASSWORD_HASH_CONCURRENCY). 0, the default, means one less than
	// GOMAXPROCS (at least one): a core always stays free for every other call, which
	// measured p99 of GET /v1/users/me during a login flood at 5–9 ms instead of 51–97 ms
	// on two cores, at the price of login throughput on small machines.
	PasswordHashConcurrency int
}

// Verification and reset tokens' lifetimes, fixed by the security requirements.
const (
	verifyEmailTTL   = 24 * time.Hour
	resetPasswordTTL = time.Hour
)

// LoadConfig reads the settings through getenv. Every bad variable is reported, each
// error naming it.
func LoadConfig(publicURL string, getenv func(string) string) (Config, error) {
	var errs []error
	dur := func(key string, def time.Duration) time.Duration {
		v := getenv(key)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a duration such as 15m", key, v))
			return def
		}
		return d
	}
	c := Config{
		PublicURL:          strings.TrimRight(publicURL, "/"),
		Issuer:             authn.IssuerFrom(publicURL, getenv),
		Audience:           authn.Audience,
		AccessTokenTTL:     dur("BACKPLANE_ACCESS_TOKEN_TTL", 15*time.Minute),
		RefreshTokenTTL:    dur("BACKPLANE_REFRESH_TOKEN_TTL", 30*24*time.Hour),
		RefreshReuseGrace:  dur("BACKPLANE_REFRESH_REUSE_GRACE", 10*time.Second),
		LoginMaxFailures:   5,
		LoginFailureWindow: 15 * time.Minute,
		SigningKeyRotation: dur("BACKPLANE_SIGNING_KEY_ROTATION", 30*24*time.Hour),
	}
	if v := getenv("BACKPLANE_LOGIN_MAX_FAILURES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("BACKPLANE_LOGIN_MAX_FAILURES: %q is not a whole number", v))
		}
		c.LoginMaxFailures = n
	}
	if v := getenv("BACKPLANE_PASSWORD_HASH_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("BACKPLANE_PASSWORD_HASH_CONCURRENCY: %q is not a whole number", v))
		}
		c.PasswordHashConcurrency = n
	}
	for e := range strings.SplitSeq(getenv("BACKPLANE_ADMIN_EMAILS"), ",") {
		if e = strings.ToLower(strings.TrimSpace(e)); e == "" {
			continue
		}
		if _, err := mail.ParseAddress(e); err != nil {
			errs = append(errs, fmt.Errorf("BACKPLANE_ADMIN_EMAILS: %q is not an email address", e))
			continue
		}
		c.AdminEmails = append(c.AdminEmails, e)
	}
	if v := getenv("BACKPLANE_KEY_ENCRYPTION_KEY"); v != "" {
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(k) != 32 {
			errs = append(errs, errors.New("BACKPLANE_KEY_ENCRYPTION_KEY: must be 32 bytes in standard base64 (openssl rand -base64 32)"))
		}
		c.KeyEncryptionKey = k
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.validate()
}

// validate checks the settings against each other and the security floor.
func (c Config) validate() error {
	var errs []error
	if c.PublicURL == "" {
		errs = append(errs, errors.New("BACKPLANE_PUBLIC_URL: required, emails link to it"))
	}
	if c.Issuer == "" {
		errs = append(errs, errors.New("BACKPLANE_JWT_ISSUER: required when BACKPLANE_PUBLIC_URL is unset"))
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > time.Hour {
		errs = append(errs, errors.New("BACKPLANE_ACCESS_TOKEN_TTL: must lie between 1m and 1h; access tokens are meant to be short-lived"))
	}
	if c.RefreshTokenTTL <= c.AccessTokenTTL {
		errs = append(errs, errors.New("BACKPLANE_REFRESH_TOKEN_TTL: must be longer than BACKPLANE_ACCESS_TOKEN_TTL"))
	}
	if c.RefreshReuseGrace < 0 || c.RefreshReuseGrace > time.Minute {
		errs = append(errs, errors.New("BACKPLANE_REFRESH_REUSE_GRACE: must lie between 0 (off) and 1m"))
	}
	if c.LoginMaxFailures < 1 || c.LoginMaxFailures > 100 {
		errs = append(errs, errors.New("BACKPLANE_LOGIN_MAX_FAILURES: must lie between 1 and 100"))
	}
	if c.PasswordHashConcurrency < 0 || c.PasswordHashConcurrency > 1024 {
		errs = append(errs, errors.New("BACKPLANE_PASSWORD_HASH_CONCURRENCY: must lie between 0 (one less than GOMAXPROCS) and 1024"))
	}
	if c.SigningKeyRotation < time.Hour {
		errs = append(errs, errors.New("BACKPLANE_SIGNING_KEY_ROTATION: must be at least 1h, well above the key pre-publication period"))
	}
	return errors.Join(errs...)
}
