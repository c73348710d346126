package ratelimit

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseFailureMode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]FailureMode{"": FailOpen, "open": FailOpen, " Closed ": FailClosed} {
		got, err := ParseFailureMode(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := ParseFailureMode("ajar")
	require.ErrorContains(t, err, `failure mode "ajar": want open or closed`)
}
