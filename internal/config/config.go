package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/ratelimit"
)

// Mode is how the process runs.
type Mode int

const (
	// Dev runs the whole mesh in one process with embedded fallbacks for missing
	// dependencies, bound to loopback.
	Dev Mode = iota
	// Serve runs one piece for production: no fallbacks, every dependency explicit.
	Serve
)

// Config is every setting of a Backplane process.
type Config struct {
	// HTTPAddr is the REST front door (BACKPLANE_HTTP_ADDR).
	HTTPAddr string
	// GRPCAddr is the native gRPC front door, or a service's own port in serve mode
	// (BACKPLANE_GRPC_ADDR).
	GRPCAddr string
	// AdminAddr serves /healthz, /readyz and /metrics (BACKPLANE_ADMIN_ADDR).
	AdminAddr string
	// Pprof serves Go's runtime profiles at /debug/pprof/ on the admin port
	// (BACKPLANE_PPROF, default false).
	Pprof bool
	// DataDir holds dev-mode state: the private PostgreSQL cluster, the mailbox
	// (BACKPLANE_DATA_DIR).
	DataDir string
	// DatabaseURL is the PostgreSQL URL (BACKPLANE_DATABASE_URL).
	DatabaseURL string
	// RedisURL is the Redis URL (BACKPLANE_REDIS_URL).
	RedisURL string
	// PublicURL is where users reach the product; emails link to it (BACKPLANE_PUBLIC_URL).
	PublicURL string
	// Issuer is the iss claim of access tokens: the auth service signs with it and
	// every verifier expects it (BACKPLANE_JWT_ISSUER; PublicURL without a trailing
	// slash by default). Read here, once, so that the two sides cannot disagree.
	Issuer string
	// ServiceAddrs maps a service name to the gRPC target clients dial
	// (BACKPLANE_<SERVICE>_ADDR, e.g. dns:///backplane-auth:9090).
	ServiceAddrs map[string]string
	// LogLevel and LogFormat shape the logs (BACKPLANE_LOG_LEVEL, BACKPLANE_LOG_FORMAT).
	LogLevel  slog.Level
	LogFormat logging.Format
	// ShutdownTimeout bounds how long in-flight calls may run after SIGTERM
	// (BACKPLANE_SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// OTLPEndpoint turns on OTLP export of traces and metrics when set
	// (OTEL_EXPORTER_OTLP_ENDPOINT).
	OTLPEndpoint string
	// MigrateOnStart makes `backplane serve` apply its service's migrations before
	// serving (BACKPLANE_MIGRATE_ON_START, default true). A deployment that runs
	// `backplane migrate` as a step of its own (the Helm chart's Job) sets it false:
	// serve then only checks that the migrations are applied, and refuses to start
	// otherwise. `backplane dev` always migrates.
	MigrateOnStart bool
	// ServiceTokenSecret signs the tokens with which our services prove themselves to
	// each other, opening INTERNAL RPCs (BACKPLANE_SERVICE_TOKEN_SECRET, at least 32
	// bytes; every piece of one deployment shares it). Dev mode mints one per process.
	ServiceTokenSecret []byte
	// MTLS makes every service-to-service call mutually authenticated (see MTLS).
	MTLS MTLS
	// Edge holds the gateway's settings.
	Edge Edge
}

// Edge is what the gateway needs to face the internet.
type Edge struct {
	// TrustedProxies are CIDRs whose ClientIPHeader is believed
	// (BACKPLANE_TRUSTED_PROXIES, comma-separated).
	TrustedProxies []string
	// ClientIPHeader is the one header naming the client that a trusted proxy writes;
	// empty means X-Forwarded-For (BACKPLANE_CLIENT_IP_HEADER).
	ClientIPHeader string
	// CORSAllowedOrigins are exact browser origins (BACKPLANE_CORS_ALLOWED_ORIGINS).
	CORSAllowedOrigins []string
	// CORSAllowCredentials lets browsers send credentials (BACKPLANE_CORS_ALLOW_CREDENTIALS).
	CORSAllowCredentials bool
	// CORSMaxAge is how long a preflight may be cached (BACKPLANE_CORS_MAX_AGE).
	CORSMaxAge time.Duration
	// MaxBodyBytes caps REST request bodies (BACKPLANE_MAX_BODY_BYTES).
	MaxBodyBytes int64
	// MaxCallTimeout caps the deadline of a forwarded unary call
	// (BACKPLANE_MAX_CALL_TIMEOUT).
	MaxCallTimeout time.Duration
	// TLSCertFile and TLSKeyFile turn on TLS on both front doors
	// (BACKPLANE_TLS_CERT_FILE, BACKPLANE_TLS_KEY_FILE).
	TLSCertFile, TLSKeyFile string
	// RateLimitAnonymous and RateLimitAuthenticated are the default limits, "N/s", "N/m"
	// or "N/h", optionally ",burst=M" (BACKPLANE_RATE_LIMIT_ANONYMOUS,
	// BACKPLANE_RATE_LIMIT_AUTHENTICATED).
	RateLimitAnonymous, RateLimitAuthenticated ratelimit.Limit
	// RateLimitFailureMode says what happens while Redis is unreachable: open lets an
	// in-process limiter decide, closed answers 503 (BACKPLANE_RATE_LIMIT_FAILURE_MODE).
	RateLimitFailureMode ratelimit.FailureMode
}

// Load reads the process's configuration for a mode through getenv (os.Getenv in main, a
// map in tests). services are the names of the mesh's services, whose addresses are read
// from BACKPLANE_<SERVICE>_ADDR. Every bad variable is reported, not just the first.
func Load(mode Mode, getenv func(string) string, services ...string) (Config, error) {
	e := NewEnv(getenv)
	host := "0.0.0.0"
	if mode == Dev {
		// A laptop's dev server should not be reachable from the café's network.
		host = "127.0.0.1"
	}
	c := Config{
		HTTPAddr:           e.addr("BACKPLANE_HTTP_ADDR", host+":8080"),
		GRPCAddr:           e.addr("BACKPLANE_GRPC_ADDR", host+":9090"),
		AdminAddr:          e.addr("BACKPLANE_ADMIN_ADDR", host+":8081"),
		Pprof:              e.Bool("BACKPLANE_PPROF", false),
		DataDir:            e.String("BACKPLANE_DATA_DIR", ".data"),
		DatabaseURL:        e.URL("BACKPLANE_DATABASE_URL", "postgres", "postgresql"),
		RedisURL:           e.URL("BACKPLANE_REDIS_URL", "redis", "rediss", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel"),
		PublicURL:          e.URL("BACKPLANE_PUBLIC_URL", "http", "https"),
		Issuer:             e.String("BACKPLANE_JWT_ISSUER", ""),
		LogLevel:           e.level("BACKPLANE_LOG_LEVEL"),
		LogFormat:          e.format("BACKPLANE_LOG_FORMAT"),
		ShutdownTimeout:    e.Duration("BACKPLANE_SHUTDOWN_TIMEOUT", 20*time.Second),
		OTLPEndpoint:       e.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		ServiceAddrs:       map[string]string{},
		ServiceTokenSecret: e.Secret("BACKPLANE_SERVICE_TOKEN_SECRET", 32),
		MigrateOnStart:     e.Bool("BACKPLANE_MIGRATE_ON_START", true),
		MTLS:               e.mtls(),
		Edge: Edge{
			TrustedProxies:         e.cidrs("BACKPLANE_TRUSTED_PROXIES"),
			ClientIPHeader:         e.String("BACKPLANE_CLIENT_IP_HEADER", ""),
			CORSAllowedOrigins:     e.origins("BACKPLANE_CORS_ALLOWED_ORIGINS"),
			CORSAllowCredentials:   e.Bool("BACKPLANE_CORS_ALLOW_CREDENTIALS", false),
			CORSMaxAge:             e.Duration("BACKPLANE_CORS_MAX_AGE", 10*time.Minute),
			MaxBodyBytes:           e.Size("BACKPLANE_MAX_BODY_BYTES", 1<<20),
			MaxCallTimeout:         e.Duration("BACKPLANE_MAX_CALL_TIMEOUT", 30*time.Second),
			TLSCertFile:            e.String("BACKPLANE_TLS_CERT_FILE", ""),
			TLSKeyFile:             e.String("BACKPLANE_TLS_KEY_FILE", ""),
			RateLimitAnonymous:     e.limit("BACKPLANE_RATE_LIMIT_ANONYMOUS", "60/m"),
			RateLimitAuthenticated: e.limit("BACKPLANE_RATE_LIMIT_AUTHENTICATED", "600/m"),
			RateLimitFailureMode:   e.failureMode("BACKPLANE_RATE_LIMIT_FAILURE_MODE"),
		},
	}
	if (c.Edge.TLSCertFile == "") != (c.Edge.TLSKeyFile == "") {
		e.fail("BACKPLANE_TLS_CERT_FILE", c.Edge.TLSCertFile, "set both BACKPLANE_TLS_CERT_FILE and BACKPLANE_TLS_KEY_FILE, or neither")
	}
	if c.Edge.CORSAllowCredentials && slices.Contains(c.Edge.CORSAllowedOrigins, "*") {
		e.fail("BACKPLANE_CORS_ALLOWED_ORIGINS", "*", "* cannot be combined with BACKPLANE_CORS_ALLOW_CREDENTIALS=true; list the exact origins")
	}
	if c.PublicURL == "" && mode == Dev {
		// Serve mode has no sensible default: every piece must agree on it, since it
		// is the access tokens' issuer and the root of every emailed link.
		c.PublicURL = "http://" + c.HTTPAddr
	}
	if c.Issuer == "" {
		c.Issuer = strings.TrimRight(c.PublicURL, "/")
	}
	for _, name := range services {
		key := "BACKPLANE_" + strings.ToUpper(name) + "_ADDR"
		if v := e.String(key, ""); v != "" {
			c.ServiceAddrs[name] = v
		}
	}
	return c, e.Err()
}

// Require reports, in one error, which of the named settings a serve-mode piece needs but
// lacks. Serve mode never falls back to embedded stand-ins, and never runs without the
// service credential that keeps INTERNAL RPCs internal.
func (c Config) Require(database, redis bool, services ...string) error {
	var errs []error
	if len(c.ServiceTokenSecret) == 0 {
		errs = append(errs, errors.New("BACKPLANE_SERVICE_TOKEN_SECRET is required in serve mode (at least 32 bytes, the same for every piece: openssl rand -base64 32)"))
	}
	if c.PublicURL == "" {
		errs = append(errs, errors.New("BACKPLANE_PUBLIC_URL is required in serve mode, the same for every piece (https://app.example.com): it issues the access tokens and roots every emailed link"))
	}
	if database && c.DatabaseURL == "" {
		errs = append(errs, errors.New("BACKPLANE_DATABASE_URL is required in serve mode (postgres://user:pass@host:5432/db)"))
	}
	if redis && c.RedisURL == "" {
		errs = append(errs, errors.New("BACKPLANE_REDIS_URL is required in serve mode (redis://host:6379/0)"))
	}
	for _, s := range services {
		if c.ServiceAddrs[s] == "" {
			errs = append(errs, fmt.Errorf("BACKPLANE_%s_ADDR is required in serve mode (e.g. dns:///backplane-%s:9090)", strings.ToUpper(s), s))
		}
	}
	return errors.Join(errs...)
}

// The readers below are the process's own kinds of value; the general ones are in env.go.

func (e *Env) addr(key, def string) string {
	v := e.String(key, def)
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" || (host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, "/ ")) {
		e.fail(key, v, "want host:port, such as 127.0.0.1:8080 or :8080")
	}
	return v
}

func (e *Env) cidrs(key string) []string {
	out := e.List(key)
	for _, v := range out {
		if _, err := netip.ParsePrefix(v); err != nil {
			if _, err := netip.ParseAddr(v); err != nil {
				e.fail(key, v, "want comma-separated CIDRs or addresses, such as 10.0.0.0/8,173.245.48.0/20")
			}
		}
	}
	return out
}

func (e *Env) origins(key string) []string {
	out := e.List(key)
	for _, v := range out {
		if v == "*" {
			continue // refused with credentials above, and by the gateway on its own
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			e.fail(key, v, "want exact origins such as https://app.example.com (scheme and host, no path)")
		}
	}
	return out
}

func (e *Env) limit(key, def string) ratelimit.Limit {
	v := e.String(key, def)
	l, err := ratelimit.ParseLimit(v)
	if err != nil {
		e.fail(key, v, "want N/s, N/m or N/h, optionally with ,burst=M (such as 600/m or 10/s,burst=40)")
	}
	return l
}

func (e *Env) failureMode(key string) ratelimit.FailureMode {
	v := e.String(key, "open")
	m, err := ratelimit.ParseFailureMode(v)
	if err != nil {
		e.fail(key, v, "want open (an in-process limiter takes over) or closed (503)")
	}
	return m
}

func (e *Env) level(key string) slog.Level {
	v := e.String(key, "info")
	l, err := logging.ParseLevel(v)
	if err != nil {
		e.fail(key, v, "want debug, info, warn or error")
	}
	return l
}

func (e *Env) format(key string) logging.Format {
	v := e.String(key, "json")
	f, err := logging.ParseFormat(v)
	if err != nil {
		e.fail(key, v, "want json or text")
	}
	return f
}
