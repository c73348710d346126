package config_test

import (
	"net/mail"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/config"
)

func TestEnvReadsEveryKind(t *testing.T) {
	t.Parallel()
	e := config.NewEnv(env(map[string]string{
		"S": " text ", "U": "https://api.example.com/", "D": "90s", "I": "8", "B": "true", "Z": "2048",
		"SECRET": "0123456789abcdef0123456789abcdef", "KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"L": " a, ,b ", "FROM": "Acme <hello@acme.test>", "TO": " Boss@Example.com, ops@example.com ",
	}))
	require.Equal(t, "text", e.String("S", "def"))
	require.Equal(t, "def", e.String("UNSET", "def"))
	require.Equal(t, "https://api.example.com/", e.URL("U", "http", "https"))
	require.Empty(t, e.URL("UNSET", "https"))
	require.Equal(t, 90*time.Second, e.Duration("D", time.Second))
	require.Equal(t, time.Second, e.Duration("UNSET", time.Second))
	require.Equal(t, 8, e.Int("I", 1))
	require.Equal(t, 1, e.Int("UNSET", 1))
	require.True(t, e.Bool("B", false))
	require.EqualValues(t, 2048, e.Size("Z", 1))
	require.Len(t, e.Secret("SECRET", 32), 32)
	require.Nil(t, e.Secret("UNSET", 32))
	require.Equal(t, []byte("0123456789abcdef0123456789abcdef"), e.SecretBase64("KEY", 32))
	require.Equal(t, []string{"a", "b"}, e.List("L"))
	require.Equal(t, "hello@acme.test", e.EmailAddress("FROM", nil).Address)
	def := &mail.Address{Address: "no-reply@example.test"}
	require.Same(t, def, e.EmailAddress("UNSET", def))
	require.Equal(t, []string{"boss@example.com", "ops@example.com"}, e.EmailAddresses("TO"))
	require.NoError(t, e.Err())
}

func TestEnvNamesEveryBadVariableAndNeverEchoesSecrets(t *testing.T) {
	t.Parallel()
	e := config.NewEnv(env(map[string]string{
		"U": "ftp://u:hunter2@host/x", "D": "soon", "I": "zero", "B": "yes please", "Z": "-1",
		"SECRET": "short-secret", "KEY": "c2hvcnQtc2VjcmV0", "FROM": "not an address", "TO": "ok@example.com,nope",
	}))
	require.Empty(t, e.String("UNSET", ""))
	e.URL("U", "https")
	require.Equal(t, time.Second, e.Duration("D", time.Second), "a bad value reads as the default")
	require.Equal(t, 3, e.Int("I", 3))
	e.Bool("B", false)
	e.Size("Z", 1)
	e.Secret("SECRET", 32)
	require.Nil(t, e.SecretBase64("KEY", 32))
	e.EmailAddress("FROM", nil)
	require.Equal(t, []string{"ok@example.com"}, e.EmailAddresses("TO"))
	e.Invalid("CUSTOM", "is not an ECDSA public key")

	err := e.Err()
	require.Error(t, err)
	for _, want := range []string{"U:", "D:", "I:", "B:", "Z:", "SECRET:", "KEY:", "FROM:", "TO:", `"nope"`, "CUSTOM: is not an ECDSA public key"} {
		require.ErrorContains(t, err, want)
	}
	for _, secret := range []string{"hunter2", "short-secret", "c2hvcnQtc2VjcmV0"} {
		require.NotContains(t, err.Error(), secret)
	}
}
