package main_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/mtls"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/services"
)

// meshCerts mints a throwaway CA and a certificate for the gateway and every service,
// as cert-manager issues them to a deployment.
func meshCerts(t testing.TB) map[string]mtls.Files {
	t.Helper()
	certs, err := mtls.Mint(t.TempDir(), append([]string{"gateway"}, services.Names()...)...)
	require.NoError(t, err)
	return certs
}

// mtlsEnv is the environment that gives a piece its certificate files.
func mtlsEnv(f mtls.Files) []string {
	return []string{
		"BACKPLANE_MTLS_CERT_FILE=" + f.Cert,
		"BACKPLANE_MTLS_KEY_FILE=" + f.Key,
		"BACKPLANE_MTLS_CA_FILE=" + f.CA,
	}
}

// A piece given another piece's certificate would be refused by every peer; it refuses to
// start instead, naming the variable.
func TestServeRefusesACertificateNamingAnotherPiece(t *testing.T) {
	t.Parallel()
	certs := meshCerts(t)
	cmd := exec.CommandContext(t.Context(), binary, "serve", "gateway")
	cmd.Env = append(append(os.Environ(),
		"BACKPLANE_REDIS_URL="+redistest.URL(),
		"BACKPLANE_SERVICE_TOKEN_SECRET=test-secret-test-secret-test-secret-0123",
		"BACKPLANE_PUBLIC_URL=https://app.backplane.test",
		"BACKPLANE_HTTP_ADDR="+freeAddr(t),
		"BACKPLANE_GRPC_ADDR="+freeAddr(t),
		"BACKPLANE_ADMIN_ADDR="+freeAddr(t),
	), mtlsEnv(certs["auth"])...)
	for _, s := range services.Names() {
		cmd.Env = append(cmd.Env, "BACKPLANE_"+strings.ToUpper(s)+"_ADDR="+freeAddr(t))
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	require.Contains(t, string(out), "BACKPLANE_MTLS_CERT_FILE")
	require.Contains(t, string(out), "names auth")
}

// `backplane dev` runs its services over the same mutual TLS as serve: it mints a CA
// and a certificate per service (and one for itself, their caller) under the data dir,
// and it becomes ready only once its health checks of every service passed over them.
func TestDevRunsItsServicesOverMutualTLS(t *testing.T) {
	t.Parallel()
	p := startDev(t, dbtest.NewDatabase(t))
	dir := filepath.Join(p.dataDir, "mtls")
	for _, piece := range append([]string{"dev"}, services.Names()...) {
		src, err := mtls.NewSource(mtls.Files{
			Cert: filepath.Join(dir, piece+".crt"), Key: filepath.Join(dir, piece+".key"), CA: filepath.Join(dir, "ca.crt"),
		})
		require.NoError(t, err, piece)
		require.Equal(t, piece, src.Identity())
	}
	require.Contains(t, p.out.String(), "mutual TLS between the services")
	code, body := get(t, "http://"+p.admin+"/readyz")
	require.Equal(t, http.StatusOK, code, body)
}
