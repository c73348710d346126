package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/backplane/backplane/internal/logging"
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

// Services are the names of Backplane's services, in start-up order.
var serviceNames = []string{"notification", "auth", "subscription", "usage", "asset"}

// ServiceNames returns the names of Backplane's services, in start-up order
// (a service's dependencies come before it).
func ServiceNames() []string { return append([]string(nil), serviceNames...) }

// Config is every setting of a Backplane process.
type Config struct {
	// HTTPAddr is the REST front door (BACKPLANE_HTTP_ADDR).
	HTTPAddr string
	// GRPCAddr is the native gRPC front door, or a service's own port in serve mode
	// (BACKPLANE_GRPC_ADDR).
	GRPCAddr string
	// AdminAddr serves /healthz, /readyz and /metrics (BACKPLANE_ADMIN_ADDR).
	AdminAddr string
	// DataDir holds dev-mode state: the private PostgreSQL cluster, the mailbox
	// (BACKPLANE_DATA_DIR).
	DataDir string
	// DatabaseURL is the PostgreSQL URL (BACKPLANE_DATABASE_URL).
	DatabaseURL string
	// RedisURL is the Redis URL (BACKPLANE_REDIS_URL).
	RedisURL string
	// PublicURL is where users reach the product; emails link to it (BACKPLANE_PUBLIC_URL).
	PublicURL string
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
}

// Load reads the configuration for a mode through getenv (os.Getenv in main, a map in
// tests). Every bad variable is reported, not just the first.
func Load(mode Mode, getenv func(string) string) (Config, error) {
	r := reader{getenv: getenv}
	host := "0.0.0.0"
	if mode == Dev {
		// A laptop's dev server should not be reachable from the café's network.
		host = "127.0.0.1"
	}
	c := Config{
		HTTPAddr:        r.addr("BACKPLANE_HTTP_ADDR", host+":8080"),
		GRPCAddr:        r.addr("BACKPLANE_GRPC_ADDR", host+":9090"),
		AdminAddr:       r.addr("BACKPLANE_ADMIN_ADDR", host+":8081"),
		DataDir:         r.str("BACKPLANE_DATA_DIR", ".data"),
		DatabaseURL:     r.url("BACKPLANE_DATABASE_URL", "postgres", "postgresql"),
		RedisURL:        r.url("BACKPLANE_REDIS_URL", "redis", "rediss", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel"),
		PublicURL:       r.url("BACKPLANE_PUBLIC_URL", "http", "https"),
		LogLevel:        r.level("BACKPLANE_LOG_LEVEL"),
		LogFormat:       r.format("BACKPLANE_LOG_FORMAT"),
		ShutdownTimeout: r.duration("BACKPLANE_SHUTDOWN_TIMEOUT", 20*time.Second),
		OTLPEndpoint:    strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")),
		ServiceAddrs:    map[string]string{},
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + strings.Replace(c.HTTPAddr, "0.0.0.0", "localhost", 1)
	}
	for _, name := range serviceNames {
		key := "BACKPLANE_" + strings.ToUpper(name) + "_ADDR"
		if v := strings.TrimSpace(getenv(key)); v != "" {
			c.ServiceAddrs[name] = v
		}
	}
	return c, errors.Join(r.errs...)
}

// Require reports, in one error, which of the named settings a serve-mode piece needs but
// lacks. Serve mode never falls back to embedded stand-ins.
func (c Config) Require(database, redis bool, services ...string) error {
	var errs []error
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

type reader struct {
	getenv func(string) string
	errs   []error
}

func (r *reader) fail(key, value, allowed string) {
	r.errs = append(r.errs, fmt.Errorf("%s: %q is not valid: %s", key, value, allowed))
}

func (r *reader) str(key, def string) string {
	if v := strings.TrimSpace(r.getenv(key)); v != "" {
		return v
	}
	return def
}

func (r *reader) addr(key, def string) string {
	v := r.str(key, def)
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" || (host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, "/ ")) {
		r.fail(key, v, "want host:port, such as 127.0.0.1:8080 or :8080")
	}
	return v
}

func (r *reader) url(key string, schemes ...string) string {
	v := strings.TrimSpace(r.getenv(key))
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		// Never echo a URL that may hold a password.
		r.fail(key, "<redacted>", "want a URL with scheme "+strings.Join(schemes, ", ")+" and a host")
		return v
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	r.fail(key, u.Scheme+"://…", "want scheme "+strings.Join(schemes, ", "))
	return v
}

func (r *reader) duration(key string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(key))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.fail(key, v, "want a non-negative Go duration such as 500ms, 20s or 1m")
		return def
	}
	return d
}

func (r *reader) level(key string) slog.Level {
	v := strings.TrimSpace(r.getenv(key))
	if v == "" {
		return slog.LevelInfo
	}
	l, err := logging.ParseLevel(v)
	if err != nil {
		r.fail(key, v, "want debug, info, warn or error")
	}
	return l
}

func (r *reader) format(key string) logging.Format {
	v := strings.TrimSpace(r.getenv(key))
	if v == "" {
		v = "json"
	}
	f, err := logging.ParseFormat(v)
	if err != nil {
		r.fail(key, v, "want json or text")
	}
	return f
}
