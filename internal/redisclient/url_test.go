package redisclient

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// parsed is what a test expects parseURL to produce, flattened across the
// three kinds of endpoint.
type parsed struct {
	kind             string // single, cluster or failover
	addrs            []string
	db               int
	username         string
	password         string
	masterName       string
	sentinelUsername string
	sentinelPassword string
	tls              bool
	poolSize         int
}

func flatten(e endpoint) parsed {
	switch {
	case e.cluster != nil:
		o := e.cluster
		return parsed{kind: "cluster", addrs: o.Addrs, username: o.Username, password: o.Password, tls: o.TLSConfig != nil, poolSize: o.PoolSize}
	case e.failover != nil:
		o := e.failover
		return parsed{kind: "failover", addrs: o.SentinelAddrs, db: o.DB, username: o.Username, password: o.Password,
			masterName: o.MasterName, sentinelUsername: o.SentinelUsername, sentinelPassword: o.SentinelPassword,
			tls: o.TLSConfig != nil, poolSize: o.PoolSize}
	default:
		o := e.single
		return parsed{kind: "single", addrs: []string{o.Addr}, db: o.DB, username: o.Username, password: o.Password, tls: o.TLSConfig != nil, poolSize: o.PoolSize}
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want parsed
	}{
		{"redis://localhost", parsed{kind: "single", addrs: []string{"localhost:6379"}}},
		{"redis://:pw@cache:6380/2?pool_size=7", parsed{kind: "single", addrs: []string{"cache:6380"}, db: 2, password: "pw", poolSize: 7}},
		{"rediss://app:p%40ss@cache.example.com", parsed{kind: "single", addrs: []string{"cache.example.com:6379"}, username: "app", password: "p@ss", tls: true}},
		{"unix://:pw@/run/redis.sock?db=3", parsed{kind: "single", addrs: []string{"/run/redis.sock"}, db: 3, password: "pw"}},

		{"redis+cluster://h1:7000,h2:7001,h3", parsed{kind: "cluster", addrs: []string{"h1:7000", "h2:7001", "h3:6379"}}},
		{"redis+cluster://app:pw@h1,h2?pool_size=9", parsed{kind: "cluster", addrs: []string{"h1:6379", "h2:6379"}, username: "app", password: "pw", poolSize: 9}},
		{"rediss+cluster://:pw@[::1]:7000,[::2]", parsed{kind: "cluster", addrs: []string{"[::1]:7000", "[::2]:6379"}, password: "pw", tls: true}},
		{"redis+cluster://only-one", parsed{kind: "cluster", addrs: []string{"only-one:6379"}}},

		{"redis+sentinel://s1:26379,s2:26380,s3/mymaster", parsed{kind: "failover", addrs: []string{"s1:26379", "s2:26380", "s3:26379"}, masterName: "mymaster"}},
		{"redis+sentinel://:pw@s1,s2/mymaster?db=4", parsed{kind: "failover", addrs: []string{"s1:26379", "s2:26379"}, db: 4, password: "pw", masterName: "mymaster"}},
		{"redis+sentinel://app:pw@s1/mymaster?sentinel_username=sen&sentinel_password=spw", parsed{kind: "failover", addrs: []string{"s1:26379"}, username: "app", password: "pw",
			masterName: "mymaster", sentinelUsername: "sen", sentinelPassword: "spw"}},
		{"redis+sentinel://s1/mymaster?password=pw", parsed{kind: "failover", addrs: []string{"s1:26379"}, password: "pw", masterName: "mymaster"}},
		{"rediss+sentinel://s1/mymaster", parsed{kind: "failover", addrs: []string{"s1:26379"}, masterName: "mymaster", tls: true}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			e, err := parseURL(tt.url)
			require.NoError(t, err)
			require.Equal(t, tt.want, flatten(e))
		})
	}
}

func TestParseURLMultiHostTLSVerifiesEachHost(t *testing.T) {
	t.Parallel()
	cluster, err := parseURL("rediss+cluster://h1,h2")
	require.NoError(t, err)
	require.Empty(t, cluster.cluster.TLSConfig.ServerName, "each node must be verified against its own name")

	sentinel, err := parseURL("rediss+sentinel://s1,s2/m")
	require.NoError(t, err)
	require.Empty(t, sentinel.failover.TLSConfig.ServerName)

	single, err := parseURL("rediss://cache.example.com")
	require.NoError(t, err)
	require.Equal(t, "cache.example.com", single.single.TLSConfig.ServerName)
}

func TestParseURLRejectsMalformedURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url     string
		wantErr string
	}{
		{"localhost:6379", "missing scheme"},
		{"memcached://h", "unsupported scheme"},
		{"redis+ring://h1,h2", "unsupported scheme"},
		{"redis://h/0?colour=blue", "unexpected option"},
		{"redis+cluster://h1,h2/3", "has no path"},
		{"redis+cluster://h1,,h2", "empty host"},
		{"redis+cluster://h1:99999", "invalid host"},
		{"redis+cluster://h1?colour=blue", "unexpected option"},
		{"redis+sentinel://s1,s2", "master name"},
		{"redis+sentinel://s1/a/b", "master name"},
		{"redis+sentinel://s1/m?db=x", "invalid database number"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			_, err := parseURL(tt.url)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestEndpointStringHasNoCredentials(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"redis://:pw@h:1":                     "h:1",
		"redis+cluster://:pw@h1,h2":           "cluster h1:6379,h2:6379",
		"redis+sentinel://:pw@s1,s2/mymaster": `sentinel master "mymaster" via s1:26379,s2:26379`,
	} {
		e, err := parseURL(url)
		require.NoError(t, err)
		require.Equal(t, want, e.String())
	}
}
