package disposition_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/disposition"
)

// Content a browser would run is an attachment; other content is shown inline.
func TestActiveContentIsAnAttachment(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"text/html; charset=utf-8", "image/svg+xml", "application/atom+xml", "application/pdf", "not a type"} {
		require.True(t, disposition.Active(ct), ct)
		require.Equal(t, `attachment; filename="a"; filename*=UTF-8''a`, disposition.Of("a", ct), ct)
	}
	for _, ct := range []string{"image/png", "text/plain", "application/octet-stream"} {
		require.False(t, disposition.Active(ct), ct)
		require.Equal(t, "inline", disposition.Of("", ct), ct)
	}
}

// A name with quotes, non-ASCII letters or separators cannot break out of the header.
func TestNamesAreEscaped(t *testing.T) {
	t.Parallel()
	require.Equal(t, `inline; filename="_t_ _photo__x.png"; filename*=UTF-8''%C3%A9t%C3%A9%20%22photo%22%3Bx.png`,
		disposition.Of("été \"photo\";x.png", "image/png"))
}
