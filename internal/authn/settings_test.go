package authn

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIssuerFrom(t *testing.T) {
	t.Parallel()
	none := func(string) string { return "" }
	require.Equal(t, "https://app.example.com", IssuerFrom("https://app.example.com/", none))
	set := func(k string) string {
		if k == IssuerSetting {
			return "https://id.example.com"
		}
		return ""
	}
	require.Equal(t, "https://id.example.com", IssuerFrom("https://app.example.com", set))
}
