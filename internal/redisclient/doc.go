// Package redisclient opens Redis connections from a single URL, whatever
// the deployment behind it: one server, a cluster, or a Sentinel-managed
// primary with replicas.
//
// [Open] understands these URL forms:
//
//	redis://[[user]:password@]host[:port][/db][?option=value...]
//	rediss://...                               (the same, over TLS)
//	unix://[[user]:password@]/path/to/socket[?db=N]
//	redis+cluster://[[user]:password@]host1:6379,host2:6379[?option=value...]
//	rediss+cluster://...                       (the same, over TLS)
//	redis+sentinel://[[user]:password@]host1:26379,host2:26379/mastername[?db=N&option=value...]
//	rediss+sentinel://...                      (the same, over TLS)
//
// A missing port defaults to 6379, or 26379 for Sentinel hosts. Options are
// go-redis's own, named in snake case (dial_timeout=3s, pool_size=20, ...),
// as accepted by redis.ParseURL, redis.ParseClusterURL and
// redis.ParseFailoverURL. In the Sentinel form the user and password are
// those of the Redis servers; the Sentinels' own, if they need any, go in
// the sentinel_username and sentinel_password options. Special characters
// in a password must be percent-encoded.
//
// Where the URL leaves them unset, reads and writes time out after 1 s, dials after
// 2 s and a failed command is retried once (go-redis's defaults let one unanswered
// command run past 5 s), and a caller's context deadline always bounds the socket
// I/O; see defaults.go for why.
//
// [StartEmbedded] runs an in-process Redis for `backplane dev` only.
package redisclient
