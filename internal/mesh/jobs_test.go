package mesh_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/mesh"
)

// mailArgs is the one job of a test service, mail.
type mailArgs struct{}

func (mailArgs) Kind() string { return "mail_send" }

func adminGet(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return rec.Code, string(body)
}

// The admin port shows the River UI of each started service with jobs, once it has
// started: the index at /jobs, the service's own at /jobs/<service>/.
func TestAdminServesTheJobsOfStartedServices(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t, "mail", fstest.MapFS{
		"0001_create_mail.up.sql":   {Data: []byte("CREATE TABLE mail (id bigint PRIMARY KEY);")},
		"0001_create_mail.down.sql": {Data: []byte("DROP TABLE mail;")},
	})
	_, err := jobs.Migrate(t.Context(), pool, "mail", nil)
	require.NoError(t, err)
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[mailArgs]) error { return nil }))
	client, err := jobs.New(pool, jobs.Config{Service: "mail", Workers: workers})
	require.NoError(t, err)

	p, err := mesh.NewProcess(logging.New(io.Discard, logging.Options{}), fakeTelemetry{})
	require.NoError(t, err)
	h := p.AdminHandler()

	code, body := adminGet(t, h, "/jobs/")
	require.Equal(t, http.StatusNotFound, code, "no service with jobs yet")
	require.Contains(t, body, "no service with jobs")

	require.NoError(t, p.AddJobs(client))
	code, body = adminGet(t, h, "/jobs/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `href="/jobs/mail/"`)
	code, _ = adminGet(t, h, "/jobs")
	require.Equal(t, http.StatusMovedPermanently, code)
	code, body = adminGet(t, h, "/jobs/mail/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "<html")
	code, body = adminGet(t, h, "/jobs/mail/api/queues")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"data"`)

	require.Error(t, p.AddJobs(client), "a service's jobs are shown once")
	code, _ = adminGet(t, h, "/jobs/mail/")
	require.Equal(t, http.StatusOK, code, "and the UI stays up")
}
