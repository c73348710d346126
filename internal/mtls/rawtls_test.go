package mtls_test

import (
	"crypto/tls"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/credentials"

	"github.com/backplane/backplane/internal/mtls"
)

// rawClientTLS presents f's certificate with no identity check of its own and no check
// of the server: the caller an attacker would write.
func rawClientTLS(t *testing.T, f mtls.Files) credentials.TransportCredentials {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	require.NoError(t, err)
	return credentials.NewTLS(&tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, //nolint:gosec // G402: plays a caller that trusts anyone
	})
}
