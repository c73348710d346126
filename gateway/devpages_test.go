package gateway_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/gateway"
	"github.com/backplane/backplane/gen/openapi"
)

func TestDevPagesCompleteEmailedLinks(t *testing.T) {
	t.Parallel()
	h := setup(t, func(c *gateway.Config) { c.DevPages = true })
	for _, path := range []string{"/verify-email?token=abc", "/reset-password?token=abc"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.rest.URL+path, nil)
		require.NoError(t, err)
		resp, page := send(t, req)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self';", "no inline script runs")
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "the token is in the URL")
		require.Regexp(t, `<script src="/dev/pages.js"></script>`, string(page))
		require.NotRegexp(t, `<script>`, string(page), "no inline script, which the policy would block")
	}

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.rest.URL+"/dev/pages.js", nil)
	require.NoError(t, err)
	resp, script := send(t, req)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// Every API path the script calls is a POST of the REST door.
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openapi.Document, &doc))
	calls := regexp.MustCompile(`call\("(/v1/[^"]+)"`).FindAllStringSubmatch(string(script), -1)
	require.Len(t, calls, 2)
	for _, c := range calls {
		require.Contains(t, doc.Paths[c[1]], "post", c[1])
	}
	// The verification page signs in with what the verification answers.
	var schemas struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(openapi.Document, &schemas))
	require.Contains(t, schemas.Components.Schemas["backplane.auth.v1.VerifyEmailResponse"].Properties, "accessToken")
	require.Contains(t, string(script), "out.accessToken")
}

func TestDevPagesAreNotServedOutsideDev(t *testing.T) {
	t.Parallel()
	h := setup(t)
	for _, path := range []string{"/verify-email?token=abc", "/reset-password", "/dev/pages.js"} {
		resp, _ := h.do(t, http.MethodGet, path, "", nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
}
