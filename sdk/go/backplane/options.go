package backplane

import (
	"crypto/tls"

	"google.golang.org/grpc"
)

// Option configures a [Client].
type Option func(*options)

type options struct {
	plaintext bool
	tls       *tls.Config
	apiKey    string
	store     TokenStore
	retry     RetryPolicy
	dial      []grpc.DialOption
}

// WithPlaintext connects without TLS. It is for a local `backplane dev` on loopback
// only: over any network, the credentials the client sends would travel in clear.
func WithPlaintext() Option {
	return func(o *options) { o.plaintext = true }
}

// WithTLSConfig sets the TLS configuration, such as a private CA's pool in RootCAs or a
// client certificate. Without it the client uses TLS 1.2 or later and the system's
// roots.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) { o.tls = cfg }
}

// WithAPIKey authenticates every call with an API key (the bpk_ secret from
// CreateApiKey) instead of a signed-in session: for servers and scripts acting for the
// key's owner, with the scopes the key was given. A client with an API key cannot sign
// in.
func WithAPIKey(secret string) Option {
	return func(o *options) { o.apiKey = secret }
}

// WithTokenStore keeps the session's tokens in store rather than in memory, so that a
// session survives a restart of the program. A store that already holds tokens when
// the client starts makes it signed in.
func WithTokenStore(store TokenStore) Option {
	return func(o *options) { o.store = store }
}

// WithRetryPolicy replaces the default [RetryPolicy]; RetryPolicy{MaxAttempts: 1} turns
// retries off.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(o *options) { o.retry = p }
}

// WithDialOptions adds gRPC dial options, such as grpc.WithUserAgent or a stats handler
// for telemetry. Interceptors added here run inside the client's own: they see every
// attempt of a call, and the refresh calls the client makes.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}
