package jobs_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/jobs"
)

// get fetches path from srv as a browser would, and returns the status and body.
func get(t *testing.T, srv *httptest.Server, path string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html,application/json;q=0.9,*/*;q=0.8")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

// assetRef finds the src and href attributes of a page.
var assetRef = regexp.MustCompile(`(?:src|href)="([^"]+)"`)

func TestUIShowsEveryServicesJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A second service, billing, with its own River schema in the same database.
	_, err := jobs.Migrate(t.Context(), b.pool, "billing", nil)
	require.NoError(t, err)
	var runs atomic.Int64
	orders := newClient(t, b.pool, jobs.Config{Workers: counter(&runs)})
	billing := newClient(t, b.pool, jobs.Config{Service: "billing", Workers: counter(&runs)})
	// Not started, so the job waits in orders_river for the UI to show it.
	_, err = orders.Insert(t.Context(), shipArgs{OrderID: 1}, nil)
	require.NoError(t, err)

	ui, err := jobs.NewUI("/jobs", nil, orders, billing)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/jobs/", ui)
	mux.Handle("/jobs", ui)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	t.Run("index links to every service", func(t *testing.T) {
		status, _, body := get(t, srv, "/jobs/")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, `href="/jobs/billing/"`)
		require.Contains(t, body, `href="/jobs/orders/"`)
		status, _, _ = get(t, srv, "/jobs")
		require.Equal(t, http.StatusOK, status, "redirected to /jobs/")
	})

	t.Run("each service's UI and its assets are served from the binary", func(t *testing.T) {
		status, header, body := get(t, srv, "/jobs/orders/")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, header.Get("Content-Type"), "text/html")
		refs := assetRef.FindAllStringSubmatch(body, -1)
		var scripts, styles int
		for _, ref := range refs {
			path := ref[1]
			require.True(t, strings.HasPrefix(path, "/jobs/orders/"), "asset %s comes from elsewhere", path)
			status, _, asset := get(t, srv, path)
			require.Equal(t, http.StatusOK, status, path)
			require.NotEmpty(t, asset, path)
			switch {
			case strings.HasSuffix(path, ".js"):
				scripts++
			case strings.HasSuffix(path, ".css"):
				styles++
			}
		}
		require.Positive(t, scripts)
		require.Positive(t, styles)
	})

	t.Run("each UI shows the jobs of its own schema", func(t *testing.T) {
		kinds := func(service string) []string {
			status, _, body := get(t, srv, "/jobs/"+service+"/api/jobs?state=available")
			require.Equal(t, http.StatusOK, status, body)
			var list struct {
				Data []struct {
					Kind string `json:"kind"`
				} `json:"data"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &list))
			var out []string
			for _, j := range list.Data {
				out = append(out, j.Kind)
			}
			return out
		}
		require.Equal(t, []string{"order_ship"}, kinds("orders"))
		require.Empty(t, kinds("billing"))
	})

	t.Run("an unknown service is not found", func(t *testing.T) {
		status, _, _ := get(t, srv, "/jobs/nope/")
		require.Equal(t, http.StatusNotFound, status)
	})
}

func TestNewUIRefusesBadArguments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var runs atomic.Int64
	orders := newClient(t, b.pool, jobs.Config{Workers: counter(&runs)})
	_, err := jobs.NewUI("jobs", nil, orders)
	require.Error(t, err, "relative prefix")
	_, err = jobs.NewUI("/jobs", nil)
	require.Error(t, err, "no clients")
	_, err = jobs.NewUI("/jobs", nil, orders, orders)
	require.Error(t, err, "a service twice")
}
