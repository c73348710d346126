package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/config"
)

func TestMTLSTakesAllThreeFilesOrNone(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Serve, env(nil))
	require.NoError(t, err)
	require.False(t, c.MTLS.Enabled())

	c, err = config.Load(config.Serve, env(map[string]string{
		"BACKPLANE_MTLS_CERT_FILE": "/etc/backplane/mtls/tls.crt",
		"BACKPLANE_MTLS_KEY_FILE":  "/etc/backplane/mtls/tls.key",
		"BACKPLANE_MTLS_CA_FILE":   "/etc/backplane/mtls/ca.crt",
	}))
	require.NoError(t, err)
	require.True(t, c.MTLS.Enabled())
	require.Equal(t, config.MTLS{CertFile: "/etc/backplane/mtls/tls.crt", KeyFile: "/etc/backplane/mtls/tls.key", CAFile: "/etc/backplane/mtls/ca.crt"}, c.MTLS)

	_, err = config.Load(config.Serve, env(map[string]string{
		"BACKPLANE_MTLS_CERT_FILE": "/etc/backplane/mtls/tls.crt",
		"BACKPLANE_MTLS_KEY_FILE":  "/etc/backplane/mtls/tls.key",
	}))
	require.ErrorContains(t, err, "BACKPLANE_MTLS_CA_FILE")
}
