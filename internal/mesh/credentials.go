package mesh

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	grpccredentials "google.golang.org/grpc/credentials"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/mtls"
	"github.com/backplane/backplane/internal/service"
)

// credentials is how a process proves itself to our services (a service token on every
// call it makes, over mutual TLS when configured) and how it checks whoever calls it.
type credentials struct {
	tokens *authn.HMACServiceTokens
	caller string
	// certs are the mutual-TLS credentials by piece: the caller's own and, in dev, each
	// service server's. Empty when mutual TLS is off.
	certs map[string]*mtls.Source
}

// newCredentials builds the credentials of a serve-mode piece: its service token,
// signed with the shared secret, and its certificate when mutual TLS is configured,
// which must name caller.
func (p *Process) newCredentials(cfg config.Config, caller string) (*credentials, error) {
	creds, err := newTokenCredentials(cfg, caller)
	if err != nil {
		return nil, err
	}
	if !cfg.MTLS.Enabled() {
		p.log.Warn("mutual TLS is off (BACKPLANE_MTLS_CERT_FILE unset): services trust each other by the service token alone")
		return creds, nil
	}
	src, err := mtls.NewSource(mtls.Files{Cert: cfg.MTLS.CertFile, Key: cfg.MTLS.KeyFile, CA: cfg.MTLS.CAFile})
	if err != nil {
		return nil, fmt.Errorf("BACKPLANE_MTLS_CERT_FILE: %w", err)
	}
	if got := src.Identity(); got != caller {
		return nil, fmt.Errorf("BACKPLANE_MTLS_CERT_FILE: the certificate names %s (%s), but this process serves %s", got, mtls.ID(got), caller)
	}
	creds.certs[caller] = src
	return creds, nil
}

// newDevCredentials builds the credentials of `backplane dev`, where every piece runs in
// this one process: a random token secret, so that INTERNAL RPCs are as closed on a
// laptop as in production, and a throwaway CA under the data dir with a certificate for
// each service's server and one for the process as their caller ("dev"), so that dev
// runs the same mutual-TLS path as serve.
func (p *Process) newDevCredentials(cfg config.Config, services []string) (*credentials, error) {
	creds, err := newTokenCredentials(cfg, devCaller)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.DataDir, "mtls")
	files, err := mtls.Mint(dir, append([]string{devCaller}, services...)...)
	if err != nil {
		return nil, fmt.Errorf("backplane dev: mint certificates: %w", err)
	}
	for piece, f := range files {
		if creds.certs[piece], err = mtls.NewSource(f); err != nil {
			return nil, fmt.Errorf("backplane dev: %w", err)
		}
	}
	p.log.Info("mutual TLS between the services with a throwaway CA", "dir", dir)
	return creds, nil
}

// devCaller is the identity `backplane dev` calls its services with.
const devCaller = "dev"

// newTokenCredentials builds the service token part of a process's credentials. Serve
// mode requires the shared secret (config.Require); without one a random secret is
// minted, which only this process knows.
func newTokenCredentials(cfg config.Config, caller string) (*credentials, error) {
	secret := cfg.ServiceTokenSecret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret) // crypto/rand.Read never fails
	}
	tokens, err := authn.NewHMACServiceTokens(secret, time.Minute, nil)
	if err != nil {
		return nil, fmt.Errorf("BACKPLANE_SERVICE_TOKEN_SECRET: %w", err)
	}
	return &credentials{tokens: tokens, caller: caller, certs: map[string]*mtls.Source{}}, nil
}

// transport is what secures a connection to the piece named peer: mutual TLS that
// expects peer's certificate, or nil (plaintext) when mutual TLS is off.
func (c *credentials) transport(peer string) grpccredentials.TransportCredentials {
	src := c.certs[c.caller]
	if src == nil {
		return nil
	}
	return mtls.ClientCredentials(src, peer)
}

// serverOptions secure the server of the piece named piece with its certificate,
// admitting only callers with one of ours.
func (c *credentials) serverOptions(piece string) []grpc.ServerOption {
	src := c.certs[piece]
	if src == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(mtls.ServerCredentials(src))}
}

// services is the check that opens INTERNAL RPCs: the service token, and with mutual
// TLS a certificate naming the same service.
func (c *credentials) services() authn.ServiceAuthenticator {
	if len(c.certs) == 0 {
		return c.tokens
	}
	return mtls.NewAuthenticator(c.tokens)
}

// dialOptions makes every call on a connection carry the service token.
func (c *credentials) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithPerRPCCredentials(c.tokens.PerRPCCredentials(c.caller))}
}

// checker builds the policy enforcement of each gRPC server of a process. Access tokens
// and API keys are checked through the auth service (keys fetched and cached, sessions
// looked up in the shared Redis, and at auth when Redis lost one) by one verifier and one introspector that every server
// of the process shares, so their caches and key fetches are not repeated per server;
// an instance that brings its own checks, as auth itself does, uses those instead.
type checker struct {
	creds  *credentials
	tokens *authn.Verifier
	keys   authn.Introspector
	// ends tells the process's streams that their session ended: one Redis
	// subscription per process, whatever the number of streams.
	ends *authn.SessionFeed
}

// newChecker prepares the shared checks over a connection to the authority, the service
// that issues credentials. authConn may be nil in a process that runs only the
// authority, whose instance brings its own.
func (p *Process) newChecker(ctx context.Context, creds *credentials, authConn grpc.ClientConnInterface, rdb redis.UniversalClient, issuer string) (*checker, error) {
	c := &checker{creds: creds}
	var client authv1.AuthServiceClient
	var sessionOpts []authn.LiveSessionsOption
	if authConn != nil {
		// A session whose key Redis lost (eviction, failover) is asked about at auth,
		// which has the records and writes the key back: never refused for the loss,
		// nor let in when it has ended.
		client = authv1.NewAuthServiceClient(authConn)
		sessionOpts = append(sessionOpts, authn.WithSessionRecords(authn.NewGRPCSessionRecords(client)))
	}
	sessions := authn.NewLiveSessions(rdb, sessionOpts...)
	c.ends = authn.NewSessionFeed(sessions, authn.SessionFeedConfig{Logger: p.log})
	if err := c.ends.Start(ctx); err != nil {
		return nil, fmt.Errorf("subscribe to ended sessions: %w", err)
	}
	p.OnStop("session feed", c.ends.Close)
	if client == nil {
		return c, nil
	}
	v, err := authn.NewVerifier(authn.VerifierConfig{
		Issuer:   issuer,
		Audience: authn.Audience,
		Keys:     authn.GRPCJWKS{Client: client},
		Sessions: sessions,
		// Within the one second in which an ended session must stop working, and short
		// enough that a service may take the edge's answer as its own (VouchFreshFor).
		CacheFor: 250 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	c.tokens = v
	// An announced end drops the cached liveness at once rather than after CacheFor.
	c.ends.OnEnded(v.ForgetSession)
	c.keys = authn.NewCachedIntrospector(authn.GRPCIntrospector{Client: client}, time.Second, nil)
	return c, nil
}

// interceptors builds the policy enforcement of one server. The edge's (edge set) vouches
// for each caller it authenticates, to the service it forwards the call to; a service's
// takes that vouch instead of verifying the credential again.
func (c *checker) interceptors(p *Process, inst *service.Instance, exempt []string, edge bool) (grpcserver.Interceptors, error) {
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
		Services:       c.creds.services(),
		Vouches:        c.creds.tokens.Vouches(),
		IssueVouches:   edge,
		ExemptPrefixes: exempt,
		Logger:         p.log,
		SessionEnds:    c.ends,
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
