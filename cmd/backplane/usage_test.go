package main_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/scenario"
)

// quotaCatalog gives the free plan a quota of 5 API calls a month.
const quotaCatalog = `
meters:
  - {name: api_calls, display_name: API calls, unit: calls, aggregation: SUM}
plans:
  - id: free
    display_name: Free
    rate_limit_per_minute: 600
    quota_limits: {api_calls: 5}
`

// The edge counts a user's calls into the usage service, with its own service
// credential, and answers 429 with a QuotaFailure once the plan's api_calls quota is
// spent; the usage summary stays open.
func TestTheEdgeCountsAPICallsAgainstTheQuota(t *testing.T) {
	t.Parallel()
	catalog := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(catalog, []byte(quotaCatalog), 0o600))
	p := startDev(t, dbtest.NewDatabase(t), "BACKPLANE_CATALOG_FILE="+catalog, "BACKPLANE_SIGNUP_MODE=instant")
	defer p.stop(t)
	a := api{base: "http://" + p.http}
	var access string

	scenario.Step(t, "sign up", func(t *testing.T) {
		code, body := a.call(t, "POST", "/v1/auth/signup", "", map[string]string{
			"email": fmt.Sprintf("quota+%d@example.com", time.Now().UnixNano()), "password": "correct horse battery", "displayName": "Quota",
		})
		require.Equal(t, http.StatusOK, code, body)
		access = body["accessToken"].(string)
	})
	scenario.Step(t, "calls are admitted, then refused once the quota is spent", func(t *testing.T) {
		var code int
		var body map[string]any
		require.Eventually(t, func() bool {
			code, body = a.call(t, "GET", "/v1/users/me", access, nil)
			return code != http.StatusOK
		}, 20*time.Second, 100*time.Millisecond, "never refused")
		require.Equal(t, http.StatusTooManyRequests, code, body)
		details := body["details"].([]any)
		require.Equal(t, "type.googleapis.com/google.rpc.QuotaFailure", details[0].(map[string]any)["@type"])
	})
	scenario.Step(t, "the summary stays open and shows the calls counted", func(t *testing.T) {
		// The edge flushes its counts every second, so the calls it admitted last may
		// still be on their way when the first refusal comes back.
		var m map[string]any
		require.Eventually(t, func() bool {
			code, body := a.call(t, "GET", "/v1/usage?meter=api_calls", access, nil)
			meters, _ := body["meters"].([]any)
			if code != http.StatusOK || len(meters) != 1 {
				return false
			}
			m, _ = meters[0].(map[string]any)
			total, err := strconv.ParseInt(fmt.Sprint(m["total"]), 10, 64)
			return err == nil && total >= 5
		}, 10*time.Second, 200*time.Millisecond, "the calls admitted before the standing came back: %v", m)
		require.Equal(t, "api_calls", m["meter"])
		require.Equal(t, "5", m["limit"])
	})
}
