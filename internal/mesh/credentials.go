package mesh

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/service"
)

// credentials is how a process proves itself to our services (a service token on every
// call it makes) and how it checks whoever calls it.
type credentials struct {
	tokens *authn.HMACServiceTokens
	caller string
}

// newCredentials builds the process's service credential. Serve mode requires the
// shared secret; dev mode, where every piece runs in this one process, mints a random
// one so that INTERNAL RPCs are as closed on a laptop as in production.
func (p *Process) newCredentials(cfg config.Config, caller string) (*credentials, error) {
	secret := cfg.ServiceTokenSecret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret) // crypto/rand.Read never fails
	}
	tokens, err := authn.NewHMACServiceTokens(secret, time.Minute, nil)
	if err != nil {
		return nil, fmt.Errorf("BACKPLANE_SERVICE_TOKEN_SECRET: %w", err)
	}
	return &credentials{tokens: tokens, caller: caller}, nil
}

// dialOptions makes every call on a connection carry the service token.
func (c *credentials) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithPerRPCCredentials(c.tokens.PerRPCCredentials(c.caller))}
}

// checker builds the policy enforcement of each gRPC server of a process. Access tokens
// and API keys are checked through the auth service (keys fetched and cached, sessions
// looked up in the shared Redis) by one verifier and one introspector that every server
// of the process shares, so their caches and key fetches are not repeated per server;
// an instance that brings its own checks, as auth itself does, uses those instead.
type checker struct {
	creds  *credentials
	tokens *authn.Verifier
	keys   authn.Introspector
}

// newChecker prepares the shared checks over a connection to the authority, the service
// that issues credentials. authConn may be nil in a process that runs only the
// authority, whose instance brings its own.
func newChecker(creds *credentials, authConn *grpc.ClientConn, rdb redis.UniversalClient, issuer string) (*checker, error) {
	c := &checker{creds: creds}
	if authConn == nil {
		return c, nil
	}
	client := authv1.NewAuthServiceClient(authConn)
	v, err := authn.NewVerifier(authn.VerifierConfig{
		Issuer:   issuer,
		Audience: authn.Audience,
		Keys:     authn.GRPCJWKS{Client: client},
		Sessions: authn.NewLiveSessions(rdb),
		// Within the one second in which an ended session must stop working.
		CacheFor: 500 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	c.tokens = v
	c.keys = authn.NewCachedIntrospector(authn.GRPCIntrospector{Client: client}, time.Second, nil)
	return c, nil
}

func (c *checker) interceptors(p *Process, inst *service.Instance, exempt []string) (grpcserver.Interceptors, error) {
	tokens, keys := c.tokens, c.keys
	if inst.Tokens != nil {
		tokens = inst.Tokens
	}
	if inst.APIKeys != nil {
		keys = inst.APIKeys
	}
	if tokens == nil || keys == nil {
		return grpcserver.Interceptors{}, fmt.Errorf("no connection to the authority (the service that issues credentials) to check them with")
	}
	in, err := authn.NewInterceptor(authn.InterceptorConfig{
		Tokens:         tokens,
		APIKeys:        keys,
		Services:       c.creds.tokens,
		ExemptPrefixes: exempt,
		Logger:         p.log,
	})
	if err != nil {
		return grpcserver.Interceptors{}, err
	}
	return grpcserver.Interceptors{
		Unary:  []grpc.UnaryServerInterceptor{in.Unary()},
		Stream: []grpc.StreamServerInterceptor{in.Stream()},
	}, nil
}

// serviceExempt are the calls a service answers without a credential: health checks,
// for load balancers and Kubernetes probes.
var serviceExempt = []string{"/grpc.health.v1.Health/"}

// edgeExempt adds reflection at the edge, which describes only the public API, so that
// grpcurl, buf curl and Postman can discover it before holding a token.
var edgeExempt = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}
