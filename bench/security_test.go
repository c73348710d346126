package bench_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"

	"github.com/backplane/backplane/gateway"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/ratelimit"
	"github.com/backplane/backplane/internal/redistest"
)

// security is the edge's real credential checks and rate limiter, over the real Redis,
// with a signed-in user whose token the benchmarks send.
type security struct {
	interceptors grpcserver.Interceptors
	rateLimit    *gateway.RateLimitConfig
	token        string
}

type noKeys struct{}

func (noKeys) Introspect(context.Context, string) (identity.Principal, error) {
	return identity.Principal{}, authn.ErrInvalidToken
}

func newSecurity(b *testing.B) *security {
	b.Helper()
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(err)
	ks, err := authn.NewKeySet(authn.SigningKey{ID: authn.KeyID(pub), Private: priv})
	must(err)
	const issuerName = "https://bench.backplane.test"
	issuer, err := authn.NewIssuer(authn.IssuerConfig{Issuer: issuerName, Audience: authn.Audience, TTL: time.Hour}, ks)
	must(err)
	rdb := redistest.Client(b)
	sessions := authn.NewLiveSessions(rdb, authn.WithKeyPrefix("bench:"+rand.Text()+":"))
	_, err = sessions.Rebuild(ctx, func(context.Context, string) ([]authn.LiveSession, error) { return nil, nil })
	must(err)
	sid := rand.Text()
	must(sessions.MarkLive(ctx, sid, time.Now().Add(time.Hour)))
	token, _, err := issuer.Issue("0b7c3f1e-9d7e-4f7a-8a8e-2f1d6f1a9c11", sid, []string{"user"})
	must(err)
	verifier, err := authn.NewVerifier(authn.VerifierConfig{Issuer: issuerName, Audience: authn.Audience, Keys: authn.IssuerJWKS{Issuer: issuer}, Sessions: sessions, CacheFor: 500 * time.Millisecond})
	must(err)
	in, err := authn.NewInterceptor(authn.InterceptorConfig{Tokens: verifier, APIKeys: noKeys{}, Logger: logging.New(io.Discard, logging.Options{})})
	must(err)
	limiter, err := ratelimit.New(ratelimit.Config{Redis: rdb, MeterProvider: noop.NewMeterProvider(), Logger: logging.New(io.Discard, logging.Options{}), Lease: true})
	must(err)
	// Never a refusal; with leases, one Redis round trip per lease of calls, as in production.
	plenty, err := ratelimit.ParseLimit("1000000/s")
	must(err)
	return &security{
		interceptors: grpcserver.Interceptors{Unary: []grpc.UnaryServerInterceptor{in.Unary()}, Stream: []grpc.StreamServerInterceptor{in.Stream()}},
		rateLimit:    &gateway.RateLimitConfig{Limiter: limiter, Policy: ratelimit.StaticPolicy{Anonymous: plenty, Authenticated: plenty}},
		token:        token,
	}
}
