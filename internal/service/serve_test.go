package service_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/service"
)

func TestCheckServeNamesEveryMissingRequirement(t *testing.T) {
	t.Parallel()
	sealed := greeter("vault")
	sealed.ServeRequires = map[string]string{"VAULT_KEY": "it seals the vault", "VAULT_SALT": "it salts"}
	env := map[string]string{"VAULT_SALT": "pepper"}

	err := service.CheckServe(func(k string) string { return env[k] }, greeter("plain"), sealed)
	require.EqualError(t, err, "VAULT_KEY is required in serve mode by vault: it seals the vault")

	env["VAULT_KEY"] = "k"
	require.NoError(t, service.CheckServe(func(k string) string { return env[k] }, greeter("plain"), sealed))
}
