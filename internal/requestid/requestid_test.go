package requestid_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/requestid"
)

func TestAccept(t *testing.T) {
	t.Parallel()
	require.Equal(t, "abc-123_x.y:z", requestid.Accept("abc-123_x.y:z"))
	for _, bad := range []string{"", "has space", "line\nbreak", strings.Repeat("a", 129), "quote\""} {
		got := requestid.Accept(bad)
		require.NotEqual(t, bad, got)
		require.Len(t, got, 32)
		require.True(t, requestid.Valid(got))
	}
	first, second := requestid.New(), requestid.New()
	require.NotEqual(t, first, second, "every id is new")
}

func TestContextRoundTrip(t *testing.T) {
	t.Parallel()
	require.Empty(t, requestid.FromContext(context.Background()))
	ctx := requestid.NewContext(context.Background(), "abc")
	require.Equal(t, "abc", requestid.FromContext(ctx))
}
