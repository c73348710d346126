package main_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/stripetest"
)

// stripeSync runs `backplane stripe sync` with env and returns its output and exit code.
func stripeSync(t *testing.T, env ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binary, "stripe", "sync")
	cmd.Env = append(os.Environ(), "BACKPLANE_STRIPE_SECRET_KEY=", "BACKPLANE_CATALOG_FILE=")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return string(out), ee.ExitCode()
	}
	require.NoError(t, err)
	return string(out), 0
}

func TestStripeSync(t *testing.T) {
	t.Parallel()
	t.Run("needs a key", func(t *testing.T) {
		out, code := stripeSync(t)
		require.Equal(t, 2, code)
		require.Contains(t, out, "set BACKPLANE_STRIPE_SECRET_KEY")
	})
	t.Run("an unknown subcommand", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), binary, "stripe", "frobnicate").CombinedOutput()
		require.Error(t, err)
		require.Contains(t, string(out), "backplane stripe sync")
	})
	t.Run("creates the catalogue once", func(t *testing.T) {
		fake := stripetest.NewFake(t)
		env := []string{"BACKPLANE_STRIPE_SECRET_KEY=sk_test_sync", "BACKPLANE_STRIPE_API_BASE=" + fake.URL}
		out, code := stripeSync(t, env...)
		require.Equal(t, 0, code, out)
		require.Contains(t, out, "product backplane_pro_monthly: created")
		require.Contains(t, out, "price backplane_pro_monthly: created price_")
		require.Contains(t, out, "20.00 USD / month")
		require.Len(t, fake.Products(), 3)
		require.Len(t, fake.Prices(), 3)

		posts := fake.Count("POST", "/v1/")
		out, code = stripeSync(t, env...)
		require.Equal(t, 0, code, out)
		require.Equal(t, 3, strings.Count(out, "price backplane_"), out)
		require.Equal(t, 3, strings.Count(out, ": unchanged price_"), out)
		require.Equal(t, posts, fake.Count("POST", "/v1/"), "the second run changes nothing")
	})
	t.Run("against stripe-mock", func(t *testing.T) {
		// stripe-mock checks every request against Stripe's API description of the
		// version stripe-go pins.
		out, code := stripeSync(t, "BACKPLANE_STRIPE_SECRET_KEY=sk_test_123", "BACKPLANE_STRIPE_API_BASE="+stripetest.Mock(t))
		require.Equal(t, 0, code, out)
	})
}
