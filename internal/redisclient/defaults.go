package redisclient

import "time"

// Production defaults, applied where the URL leaves an option unset. go-redis's
// own (3 s reads and writes, 5 s dials, 3 retries) let one command against a
// blackholed server take over 5 s, past the edge's whole call budget; with these a
// command that gets no answer fails within about 2 s even when the caller sets no
// deadline, so a stalled Redis is an UNAVAILABLE answer, not a stalled call. Callers
// on a request path still bound their round trips with a context deadline well
// below that, which the client honours on the socket (ContextTimeoutEnabled).
const (
	// defaultDialTimeout bounds a new connection, TLS handshake included, on a
	// local network or within a region.
	defaultDialTimeout = 2 * time.Second
	// defaultIOTimeout bounds a read or write: Redis answers in well under a
	// millisecond, so a second without a byte means the server or link is gone.
	defaultIOTimeout = time.Second
	// defaultPoolTimeout bounds the wait for a free connection when the pool is
	// exhausted; go-redis's default (read timeout + 1 s) adds to a stalled call.
	defaultPoolTimeout = time.Second
	// defaultMaxRetries keeps one retry, for a pooled connection the server or a
	// proxy closed, without multiplying the timeout of a server that does not answer.
	defaultMaxRetries = 1
)

// withDefaults fills in the production defaults where the URL set nothing, and
// lets every caller's context deadline reach the socket.
func (e endpoint) withDefaults() endpoint {
	switch {
	case e.cluster != nil:
		o := e.cluster
		o.ContextTimeoutEnabled = true
		// A cluster's nodes do not retry by default (MOVED and ASK redirects
		// cover a moving slot): that is already what defaultMaxRetries aims for.
		setDefaults(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, nil)
	case e.failover != nil:
		o := e.failover
		o.ContextTimeoutEnabled = true
		setDefaults(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries)
	default:
		o := e.single
		o.ContextTimeoutEnabled = true
		setDefaults(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries)
	}
	return e
}

// setDefaults sets each zero (unset) option to its default; a nil retries is left to go-redis. A negative value, which
// go-redis reads as "none", is the URL's choice and stays.
func setDefaults(dial, read, write, pool *time.Duration, retries *int) {
	for _, d := range []struct {
		opt *time.Duration
		def time.Duration
	}{{dial, defaultDialTimeout}, {read, defaultIOTimeout}, {write, defaultIOTimeout}, {pool, defaultPoolTimeout}} {
		if *d.opt == 0 {
			*d.opt = d.def
		}
	}
	if retries != nil && *retries == 0 {
		*retries = defaultMaxRetries
	}
}
