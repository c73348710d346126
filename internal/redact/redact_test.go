package redact_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/redact"
)

func TestUserinfoPasswords(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"s3cret", "s3cret"}, redact.UserinfoPasswords("postgres://app:s3cret@db:5432/x"))
	require.Contains(t, redact.UserinfoPasswords("redis://:pa/ss@h:6379"), "pa/ss", "an unescaped / in the password")
	require.Empty(t, redact.UserinfoPasswords("postgres://db:5432/x"))
	require.Empty(t, redact.UserinfoPasswords("host=db password=x"))
}

func TestSpellings(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"a b", "a%20b", "a+b"}, redact.Spellings([]string{"a%20b", "a+b", ""}))
}

func TestErrorBlanksSecretsAndUnwraps(t *testing.T) {
	t.Parallel()
	err := redact.Error(fmt.Errorf("dial postgres://app:s3cret@db: %w", context.Canceled), []string{"s3cret"})
	require.NotContains(t, err.Error(), "s3cret")
	require.Contains(t, err.Error(), "xxxxx")
	require.ErrorIs(t, err, context.Canceled)
}
