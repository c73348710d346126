package redisclient

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// endpoint is a parsed Redis URL. Exactly one of its option sets is set.
type endpoint struct {
	single   *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
}

// newClient builds the client the endpoint calls for, without connecting.
func (e endpoint) newClient() redis.UniversalClient {
	switch {
	case e.cluster != nil:
		return redis.NewClusterClient(e.cluster)
	case e.failover != nil:
		return redis.NewFailoverClient(e.failover)
	default:
		return redis.NewClient(e.single)
	}
}

// String describes the endpoint for error messages, without credentials.
func (e endpoint) String() string {
	switch {
	case e.cluster != nil:
		return "cluster " + strings.Join(e.cluster.Addrs, ",")
	case e.failover != nil:
		return fmt.Sprintf("sentinel master %q via %s", e.failover.MasterName, strings.Join(e.failover.SentinelAddrs, ","))
	default:
		return e.single.Addr
	}
}

// passwords returns the passwords the endpoint will send, for redaction.
func (e endpoint) passwords() []string {
	switch {
	case e.cluster != nil:
		return []string{e.cluster.Password}
	case e.failover != nil:
		return []string{e.failover.Password, e.failover.SentinelPassword}
	default:
		return []string{e.single.Password}
	}
}

// parseURL parses any of the URL forms the package documents.
func parseURL(raw string) (endpoint, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return endpoint{}, errors.New("missing scheme: want redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://")
	}
	switch scheme {
	case "redis", "rediss", "unix":
		opts, err := redis.ParseURL(raw)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{single: opts}, nil
	case "redis+cluster", "rediss+cluster":
		m, err := parseMultiHostURL(raw, "6379")
		if err != nil {
			return endpoint{}, err
		}
		opts, err := clusterOptions(m)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{cluster: opts}, nil
	case "redis+sentinel", "rediss+sentinel":
		m, err := parseMultiHostURL(raw, "26379")
		if err != nil {
			return endpoint{}, err
		}
		opts, err := failoverOptions(m)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{failover: opts}, nil
	default:
		return endpoint{}, fmt.Errorf("unsupported scheme %q: want redis, rediss, unix, redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel", scheme)
	}
}

// multiHostURL is a URL whose authority lists several comma-separated
// hosts, which net/url cannot parse.
type multiHostURL struct {
	tls   bool
	user  *url.Userinfo
	hosts []string // host:port, port defaulted
	path  string
	query url.Values
}

// parseMultiHostURL splits the host list off raw and leaves the rest
// (userinfo escapes, path, query) to net/url.
func parseMultiHostURL(raw, defaultPort string) (multiHostURL, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	userinfo, hostList := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hostList = authority[:at+1], authority[at+1:]
	}
	// A placeholder stands in for the host list; the error is unwrapped so
	// that the placeholder URL does not show up in messages.
	u, err := url.Parse("redis://" + userinfo + "placeholder" + tail)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return multiHostURL{}, err
	}

	m := multiHostURL{tls: strings.HasPrefix(scheme, "rediss"), user: u.User, path: u.Path, query: u.Query()}
	for h := range strings.SplitSeq(hostList, ",") {
		addr, err := hostPort(strings.TrimSpace(h), defaultPort)
		if err != nil {
			return multiHostURL{}, err
		}
		m.hosts = append(m.hosts, addr)
	}
	return m, nil
}

// hostPort validates one host of a host list and adds the default port if
// it has none.
func hostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", errors.New("empty host in host list")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port (or a bare IPv6 address): add the default one.
		host, port = strings.Trim(h, "[]"), defaultPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return "", fmt.Errorf("invalid host %q: want host[:port]", h)
	}
	return net.JoinHostPort(host, port), nil
}

// clusterOptions turns a redis+cluster URL into go-redis's cluster URL
// (first host, the others as addr parameters) so that go-redis parses the
// options, then applies the credentials.
func clusterOptions(m multiHostURL) (*redis.ClusterOptions, error) {
	if strings.Trim(m.path, "/") != "" {
		return nil, errors.New("a cluster URL has no path: Redis Cluster has only database 0")
	}
	opts, err := redis.ParseClusterURL(m.goRedisURL(m.query).String())
	if err != nil {
		return nil, err
	}
	opts.Username, opts.Password = credentials(m.user)
	opts.TLSConfig = perHostTLS(opts.TLSConfig)
	return opts, nil
}

// failoverOptions turns a redis+sentinel URL into go-redis's failover URL,
// then applies the credentials: the URL's own for the Redis servers,
// sentinel_username and sentinel_password for the Sentinels.
func failoverOptions(m multiHostURL) (*redis.FailoverOptions, error) {
	master := strings.Trim(m.path, "/")
	if master == "" || strings.Contains(master, "/") {
		return nil, errors.New("a sentinel URL needs the master name as its path, as in redis+sentinel://host:26379/mymaster")
	}
	q := maps.Clone(m.query)
	sentinelUser, sentinelPassword := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	q.Set("master_name", master)

	opts, err := redis.ParseFailoverURL(m.goRedisURL(q).String())
	if err != nil {
		return nil, err
	}
	opts.SentinelUsername, opts.SentinelPassword = sentinelUser, sentinelPassword
	if m.user != nil {
		opts.Username, opts.Password = credentials(m.user)
	}
	opts.TLSConfig = perHostTLS(opts.TLSConfig)
	return opts, nil
}

// goRedisURL spells m the way go-redis's parsers want it: the first host in
// the authority, the others as addr parameters, no credentials (they are
// applied afterwards, so they never pass through a parser's error message).
func (m multiHostURL) goRedisURL(q url.Values) *url.URL {
	withAddrs := maps.Clone(q)
	for _, h := range m.hosts[1:] {
		withAddrs.Add("addr", h)
	}
	scheme := "redis"
	if m.tls {
		scheme = "rediss"
	}
	return &url.URL{Scheme: scheme, Host: m.hosts[0], RawQuery: withAddrs.Encode()}
}

// credentials returns the user name and password of u, which may be nil.
func credentials(u *url.Userinfo) (username, password string) {
	if u == nil {
		return "", ""
	}
	password, _ = u.Password()
	return u.Username(), password
}

// perHostTLS clears the server name go-redis pins to the first host, so that
// each connection verifies the certificate of the host it actually dials:
// crypto/tls takes the name from the dialed address when ServerName is empty.
func perHostTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	c.ServerName = ""
	c.MinVersion = tls.VersionTLS12
	return c
}
