package auth

import (
	"errors"
	"time"

	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/config"
)

// Config holds the auth service's settings. Each comes from one environment variable,
// named next to its field. The public URL, which emails link to, and the token issuer
// are the process's settings and arrive in service.Deps.
type Config struct {
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
	// PasswordHashConcurrency bounds how many argon2id computations run at once: a
	// flood of logins queues beyond it (BACKPLANE_PASSWORD_HASH_CONCURRENCY). 0, the
	// default, means one per core (GOMAXPROCS). Hashing runs on worker threads of
	// lowered scheduling priority (package password), so every core may hash while the
	// kernel still gives the rest of the API the CPU first.
	PasswordHashConcurrency int
	// SignupMode is how SignUp answers (BACKPLANE_SIGNUP_MODE): SignupVerify, the
	// default, or SignupInstant.
	SignupMode SignupMode
}

// SignupMode is how SignUp answers.
type SignupMode string

const (
	// SignupVerify answers every sign-up alike, "check your email", with no tokens: a
	// new address is sent the verification link, which signs in; a taken one an email
	// saying someone tried to register with it. Sign-up then reveals no account.
	SignupVerify SignupMode = "verify"
	// SignupInstant signs the new account in at once and answers a taken address with
	// ALREADY_EXISTS, which tells anyone whether an address has an account.
	SignupInstant SignupMode = "instant"
)

// Verification and reset tokens' lifetimes, fixed by the security requirements.
const (
	verifyEmailTTL   = 24 * time.Hour
	resetPasswordTTL = time.Hour
)

// LoadConfig reads the settings through env, with the rest of the process's
// configuration and before anything is opened. Every bad variable is reported, each
// error naming it.
func LoadConfig(env *config.Env) (Config, error) {
	c := Config{
		Audience:                authn.Audience,
		AccessTokenTTL:          env.Duration("BACKPLANE_ACCESS_TOKEN_TTL", 15*time.Minute),
		RefreshTokenTTL:         env.Duration("BACKPLANE_REFRESH_TOKEN_TTL", 30*24*time.Hour),
		RefreshReuseGrace:       env.Duration("BACKPLANE_REFRESH_REUSE_GRACE", 10*time.Second),
		LoginMaxFailures:        env.Int("BACKPLANE_LOGIN_MAX_FAILURES", 5),
		LoginFailureWindow:      15 * time.Minute,
		AdminEmails:             env.EmailAddresses("BACKPLANE_ADMIN_EMAILS"),
		KeyEncryptionKey:        env.SecretBase64("BACKPLANE_KEY_ENCRYPTION_KEY", 32),
		SigningKeyRotation:      env.Duration("BACKPLANE_SIGNING_KEY_ROTATION", 30*24*time.Hour),
		PasswordHashConcurrency: env.Int("BACKPLANE_PASSWORD_HASH_CONCURRENCY", 0),
		SignupMode:              SignupMode(env.String("BACKPLANE_SIGNUP_MODE", string(SignupVerify))),
	}
	if c.SignupMode != SignupVerify && c.SignupMode != SignupInstant {
		env.Invalid("BACKPLANE_SIGNUP_MODE", "must be verify or instant")
		c.SignupMode = SignupVerify
	}
	// A bad value reads as its default, so validate reports only what is wrong besides.
	if err := errors.Join(env.Err(), c.validate()); err != nil {
		return Config{}, err
	}
	return c, nil
}

// validate checks the settings against each other and the security floor.
func (c Config) validate() error {
	var errs []error
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > authn.MaxAccessTokenTTL {
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
		errs = append(errs, errors.New("BACKPLANE_PASSWORD_HASH_CONCURRENCY: must lie between 0 (one per core) and 1024"))
	}
	if c.SigningKeyRotation < time.Hour {
		errs = append(errs, errors.New("BACKPLANE_SIGNING_KEY_ROTATION: must be at least 1h, well above the key pre-publication period"))
	}
	return errors.Join(errs...)
}
