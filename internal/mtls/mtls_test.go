package mtls_test

import (
	"context"
	"crypto/x509"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/mtls"
	"github.com/backplane/backplane/internal/redistest"
)

// echoAuth answers GetJwks (PUBLIC) and LookupUser (INTERNAL, with the calling service
// as the user's id).
type echoAuth struct {
	authv1.UnimplementedAuthServiceServer
}

func (echoAuth) GetJwks(context.Context, *authv1.GetJwksRequest) (*authv1.GetJwksResponse, error) {
	return &authv1.GetJwksResponse{}, nil
}

func (echoAuth) LookupUser(ctx context.Context, _ *authv1.LookupUserRequest) (*authv1.LookupUserResponse, error) {
	name, _ := identity.ServiceFromContext(ctx)
	return &authv1.LookupUserResponse{User: &authv1.User{Id: name}}, nil
}

var lookup = &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_Email{Email: "ada@example.com"}}

type noKeys struct{}

func (noKeys) FetchJWKS(context.Context) ([]*authv1.Jwk, error) { return nil, nil }

type noAPIKeys struct{}

func (noAPIKeys) Introspect(context.Context, string) (identity.Principal, error) {
	return identity.Principal{}, authn.ErrInvalidToken
}

type bundle struct {
	dir    string
	ca     *mtls.CA
	tokens *authn.HMACServiceTokens
	// addr is the auth server, serving as the piece "auth" with its files in dir.
	addr string
	// server is the auth server's certificate source.
	server *mtls.Source
}

// setup serves echoAuth as "auth" behind mutual TLS and the production authn interceptor,
// whose INTERNAL check is mtls.Authenticator over HMAC service tokens.
func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{dir: t.TempDir()}
	var err error
	b.ca, err = mtls.NewCA()
	require.NoError(t, err)
	files, err := b.ca.WriteFiles(filepath.Join(b.dir, "auth"), "auth")
	require.NoError(t, err)
	b.server, err = mtls.NewSource(files)
	require.NoError(t, err)
	require.Equal(t, "auth", b.server.Identity())

	b.tokens, err = authn.NewHMACServiceTokens([]byte("0123456789abcdef0123456789abcdef"), time.Minute, nil)
	require.NoError(t, err)
	verifier, err := authn.NewVerifier(authn.VerifierConfig{
		Issuer: "https://backplane.test", Audience: authn.Audience,
		Keys: noKeys{}, Sessions: authn.NewLiveSessions(redistest.Client(t)),
	})
	require.NoError(t, err)
	in, err := authn.NewInterceptor(authn.InterceptorConfig{
		Tokens:   verifier,
		APIKeys:  noAPIKeys{},
		Services: mtls.NewAuthenticator(b.tokens),
		Logger:   slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	srv := grpctest.Start(t, func(s grpc.ServiceRegistrar) {
		authv1.RegisterAuthServiceServer(s, echoAuth{})
	}, grpctest.WithAuthenticator(in), grpctest.WithServerConfig(func(c *grpcserver.Config) {
		c.Options = append(c.Options, grpc.Creds(mtls.ServerCredentials(b.server)))
	}), grpctest.WithDialOptions(grpc.WithTransportCredentials(mtls.ClientCredentials(b.server, "auth"))))
	b.addr = srv.Addr
	return b
}

// dial connects to the auth server with files as the caller's credentials, expecting the
// server to be want, with a service token naming token ("" for none).
func (b *bundle) dial(t *testing.T, files mtls.Files, want, token string) authv1.AuthServiceClient {
	t.Helper()
	src, err := mtls.NewSource(files)
	require.NoError(t, err)
	opts := []grpc.DialOption{grpc.WithTransportCredentials(mtls.ClientCredentials(src, want))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(b.tokens.PerRPCCredentials(token)))
	}
	return authv1.NewAuthServiceClient(grpctest.Dial(t, b.addr, opts...))
}

// piece writes files for piece signed by ca in a directory of their own.
func (b *bundle) piece(t *testing.T, ca *mtls.CA, piece string) mtls.Files {
	t.Helper()
	f, err := ca.WriteFiles(t.TempDir(), piece)
	require.NoError(t, err)
	return f
}

// withURIs writes files for a certificate of ca carrying uris, whatever they are.
func (b *bundle) withURIs(t *testing.T, ca *mtls.CA, uris ...*url.URL) mtls.Files {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(uris...)
	require.NoError(t, err)
	dir := t.TempDir()
	f := mtls.Files{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"), CA: filepath.Join(dir, "ca.crt")}
	require.NoError(t, os.WriteFile(f.Cert, certPEM, 0o600))
	require.NoError(t, os.WriteFile(f.Key, keyPEM, 0o600))
	require.NoError(t, os.WriteFile(f.CA, ca.PEM(), 0o600))
	return f
}

func requireCode(t *testing.T, want codes.Code, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, want, status.Code(err), "error: %v", err)
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestInternalCallNeedsCertificateAndTokenNamingTheSameService(t *testing.T) {
	t.Parallel()
	b := setup(t)
	usage := b.piece(t, b.ca, "usage")

	resp, err := b.dial(t, usage, "auth", "usage").LookupUser(ctx(t), lookup)
	require.NoError(t, err)
	require.Equal(t, "usage", resp.GetUser().GetId(), "the calling service, as both factors name it")

	// The certificate alone is not enough: the token is the second factor.
	_, err = b.dial(t, usage, "auth", "").LookupUser(ctx(t), lookup)
	requireCode(t, codes.Unauthenticated, err)
}

func TestWrongCAIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other, err := mtls.NewCA()
	require.NoError(t, err)

	t.Run("a caller whose certificate another CA signed", func(t *testing.T) {
		f := b.piece(t, other, "usage")
		// It trusts our CA, so only the server's check of its chain can refuse it.
		f.CA = b.piece(t, b.ca, "usage").CA
		_, err := b.dial(t, f, "auth", "usage").GetJwks(ctx(t), &authv1.GetJwksRequest{})
		requireCode(t, codes.Unavailable, err)
	})
	t.Run("a server whose certificate a CA the caller does not trust signed", func(t *testing.T) {
		f := b.piece(t, b.ca, "usage")
		f.CA = b.piece(t, other, "usage").CA
		_, err := b.dial(t, f, "auth", "usage").GetJwks(ctx(t), &authv1.GetJwksRequest{})
		requireCode(t, codes.Unavailable, err)
	})
	t.Run("a caller without a certificate", func(t *testing.T) {
		conn := grpctest.Dial(t, b.addr, grpc.WithPerRPCCredentials(b.tokens.PerRPCCredentials("usage")))
		_, err := authv1.NewAuthServiceClient(conn).LookupUser(ctx(t), lookup)
		requireCode(t, codes.Unavailable, err)
	})
}

func TestWrongSANIsRefusedForInternalRPCs(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("a certificate naming another service than the token", func(t *testing.T) {
		client := b.dial(t, b.piece(t, b.ca, "usage"), "auth", "notification")
		_, err := client.LookupUser(ctx(t), lookup)
		requireCode(t, codes.Unauthenticated, err)
		// The connection itself is sound: public RPCs still answer.
		_, err = client.GetJwks(ctx(t), &authv1.GetJwksRequest{})
		require.NoError(t, err)
	})
	for name, uris := range map[string][]*url.URL{
		"another trust domain":      {{Scheme: "spiffe", Host: "elsewhere", Path: "/usage"}},
		"no URI SAN":                nil,
		"two identities":            {mtls.ID("usage"), mtls.ID("notification")},
		"a path that names nothing": {{Scheme: "spiffe", Host: mtls.TrustDomain, Path: "/usage/../auth"}},
	} {
		t.Run(name, func(t *testing.T) {
			f := b.withURIs(t, b.ca, uris...)
			conn := grpctest.Dial(t, b.addr,
				grpc.WithTransportCredentials(clientWithFiles(t, f)),
				grpc.WithPerRPCCredentials(b.tokens.PerRPCCredentials("usage")))
			_, err := authv1.NewAuthServiceClient(conn).LookupUser(ctx(t), lookup)
			requireCode(t, codes.Unavailable, err)
		})
	}
	t.Run("a server that is not the service dialed", func(t *testing.T) {
		_, err := b.dial(t, b.piece(t, b.ca, "usage"), "subscription", "usage").GetJwks(ctx(t), &authv1.GetJwksRequest{})
		requireCode(t, codes.Unavailable, err)
	})
}

// clientWithFiles makes client credentials from files a Source refuses to load (their
// certificate names no Backplane piece), by presenting them through a tls.Config of the
// test's own: what an attacker holding such a certificate would do.
func clientWithFiles(t *testing.T, f mtls.Files) credentials.TransportCredentials {
	t.Helper()
	_, err := mtls.NewSource(f)
	require.Error(t, err, "a Source refuses a certificate without one Backplane identity")
	return rawClientTLS(t, f)
}

func TestRotatedFilesArePickedUpWithoutRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	usage := b.piece(t, b.ca, "usage")
	stale := b.piece(t, b.ca, "usage") // keeps the first CA: what a caller not yet rotated holds

	serverSerial := func(client authv1.AuthServiceClient) (*big.Int, *x509.Certificate) {
		t.Helper()
		var p peer.Peer
		_, err := client.GetJwks(ctx(t), &authv1.GetJwksRequest{}, grpc.Peer(&p))
		require.NoError(t, err)
		leaf := p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0]
		return leaf.SerialNumber, leaf
	}
	before, _ := serverSerial(b.dial(t, usage, "auth", "usage"))

	// cert-manager rotates: a new CA, and new certificates for both pieces, written over
	// the files each already reads.
	rotated, err := mtls.NewCA()
	require.NoError(t, err)
	_, err = rotated.WriteFiles(filepath.Dir(usage.Cert), "usage")
	require.NoError(t, err)
	_, err = rotated.WriteFiles(filepath.Join(b.dir, "auth"), "auth")
	require.NoError(t, err)

	after, leaf := serverSerial(b.dial(t, usage, "auth", "usage"))
	require.NotEqual(t, before, after, "a new connection meets the server's new certificate")
	require.Equal(t, "Backplane throwaway CA", leaf.Issuer.CommonName)
	resp, err := b.dial(t, usage, "auth", "usage").LookupUser(ctx(t), lookup)
	require.NoError(t, err, "both sides trust the new CA")
	require.Equal(t, "usage", resp.GetUser().GetId())

	// The server now trusts only the new CA, so a caller still on the old one is refused.
	_, err = b.dial(t, stale, "auth", "usage").GetJwks(ctx(t), &authv1.GetJwksRequest{})
	requireCode(t, codes.Unavailable, err)
}
