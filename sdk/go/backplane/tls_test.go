package backplane_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/sdk/go/backplane"
)

// The client speaks TLS unless told otherwise, verifying the server against the roots
// it is given.
func TestTLSIsTheDefault(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	once := backplane.WithRetryPolicy(backplane.RetryPolicy{MaxAttempts: 1})

	// A client left at its defaults does not talk plaintext to the shared server.
	c, err := backplane.New(target, once)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Auth.GetJwks(ctx, &authv1.GetJwksRequest{})
	requireCode(t, codes.Unavailable, err)

	certFile, keyFile, pool := selfSigned(t)
	srv, err := startDev(t, "BACKPLANE_TLS_CERT_FILE="+certFile, "BACKPLANE_TLS_KEY_FILE="+keyFile)
	require.NoError(t, err)

	// Nor does it trust a certificate its roots do not vouch for.
	c, err = backplane.New(srv.grpc, once)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Auth.GetJwks(ctx, &authv1.GetJwksRequest{})
	requireCode(t, codes.Unavailable, err)

	c, err = backplane.New(srv.grpc, backplane.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	jwks, err := c.Auth.GetJwks(ctx, &authv1.GetJwksRequest{})
	require.NoError(t, err)
	require.NotEmpty(t, jwks.GetKeys())

	_, err = backplane.New(srv.grpc, backplane.WithPlaintext(), backplane.WithTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	require.Error(t, err, "plaintext and a TLS configuration contradict each other")
}

// selfSigned writes a certificate for 127.0.0.1 and its key, returning their paths and
// a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "backplane sdk test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
