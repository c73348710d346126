package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/services"
)

// piece is one `backplane serve` process.
type piece struct {
	*process
	admin string
}

func servePiece(t *testing.T, name string, env []string) *piece {
	t.Helper()
	p := &piece{admin: freeAddr(t)}
	p.process = startProcess(t, append(env, "BACKPLANE_ADMIN_ADDR="+p.admin), "serve", name)
	return p
}

// serveMesh is every piece of the mesh as its own `backplane serve` process, over
// mutual TLS, on a fresh database and the test Redis.
type serveMesh struct {
	// pieces are the services' processes, by name; gateway is the edge's.
	pieces  map[string]*piece
	gateway *piece
	// http and grpc are the edge's front doors.
	http, grpc string
}

// startServeMesh runs `backplane migrate` on a fresh database, then every piece, which
// do not migrate; services find each other by address and prove themselves to each other
// with certificates over mutual TLS and the shared service secret. It returns once every
// piece is ready.
func startServeMesh(t *testing.T) *serveMesh {
	t.Helper()
	addrs := map[string]string{}
	for _, s := range services.Names() {
		addrs[s] = freeAddr(t)
	}
	dbURL := dbtest.NewDatabase(t)
	migrate := exec.CommandContext(t.Context(), binary, "migrate")
	migrate.Env = append(os.Environ(), "BACKPLANE_DATABASE_URL="+dbURL)
	out, err := migrate.CombinedOutput()
	require.NoError(t, err, "%s", out)
	common := []string{
		"BACKPLANE_MIGRATE_ON_START=false",
		"BACKPLANE_DATABASE_URL=" + dbURL,
		"BACKPLANE_REDIS_URL=" + redistest.URL(),
		"BACKPLANE_SERVICE_TOKEN_SECRET=test-secret-test-secret-test-secret-0123",
		"BACKPLANE_KEY_ENCRYPTION_KEY=dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMDEyMzQ1Njc=",
		"BACKPLANE_PUBLIC_URL=https://app.backplane.test",
		"BACKPLANE_SIGNUP_MODE=instant",
		"BACKPLANE_DATA_DIR=" + t.TempDir(),
		"BACKPLANE_LOG_FORMAT=text",
	}
	for _, s := range services.Names() {
		common = append(common, fmt.Sprintf("BACKPLANE_%s_ADDR=%s", strings.ToUpper(s), addrs[s]))
	}
	certs := meshCerts(t)
	m := &serveMesh{pieces: map[string]*piece{}, http: freeAddr(t), grpc: freeAddr(t)}
	for _, s := range services.Names() {
		m.pieces[s] = servePiece(t, s, append(append(common, mtlsEnv(certs[s])...), "BACKPLANE_GRPC_ADDR="+addrs[s]))
	}
	m.gateway = servePiece(t, "gateway", append(append(common, mtlsEnv(certs["gateway"])...), "BACKPLANE_HTTP_ADDR="+m.http, "BACKPLANE_GRPC_ADDR="+m.grpc))
	for _, p := range m.pieces {
		p.waitReady(t, p.admin)
	}
	m.gateway.waitReady(t, m.gateway.admin)
	return m
}

// TestServeRunsTheMeshAsSeparateProcesses runs every piece as its own process, as in
// production with the Helm chart, and a sign-up through the gateway crosses three of
// them.
func TestServeRunsTheMeshAsSeparateProcesses(t *testing.T) {
	t.Parallel()
	// Not a step: the processes live as long as the test, not a step.
	m := startServeMesh(t)
	scenario.Step(t, "a sign-up crosses three services", func(t *testing.T) {
		a := api{base: "http://" + m.http}
		email := fmt.Sprintf("grace+%d@example.com", time.Now().UnixNano())
		code, body := a.call(t, "POST", "/v1/auth/signup", "", map[string]string{"email": email, "password": "correct horse battery", "displayName": "Grace"})
		require.Equal(t, http.StatusOK, code, body)
		access := body["accessToken"].(string)
		code, body = a.call(t, "GET", "/v1/users/me", access, nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, email, body["user"].(map[string]any)["email"])
		code, _ = a.call(t, "GET", "/v1/notifications", access, nil)
		require.Equal(t, http.StatusOK, code, "notification checks the token on its own")
	})
	scenario.Step(t, "every piece drains and exits cleanly on SIGTERM", func(t *testing.T) {
		m.gateway.stop(t)
		for _, p := range m.pieces {
			p.stop(t)
		}
	})
}

// A piece told not to migrate (BACKPLANE_MIGRATE_ON_START=false) refuses a database that
// nobody migrated, naming the remedy, and changes nothing in it.
func TestServeWithoutMigrateOnStartNeedsAMigratedDatabase(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	cmd := exec.CommandContext(t.Context(), binary, "serve", "notification")
	cmd.Env = append(os.Environ(),
		"BACKPLANE_MIGRATE_ON_START=false",
		"BACKPLANE_DATABASE_URL="+dbURL,
		"BACKPLANE_REDIS_URL="+redistest.URL(),
		"BACKPLANE_SERVICE_TOKEN_SECRET=test-secret-test-secret-test-secret-0123",
		"BACKPLANE_PUBLIC_URL=https://app.backplane.test",
		"BACKPLANE_AUTH_ADDR="+freeAddr(t),
		"BACKPLANE_GRPC_ADDR="+freeAddr(t),
		"BACKPLANE_ADMIN_ADDR="+freeAddr(t),
	)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	require.Equal(t, 1, exit.ExitCode(), "%s", out)
	require.Contains(t, string(out), "lacks migrations 0001_create_notification_tables")
	require.Contains(t, string(out), "run `backplane migrate` first")

	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	var schemas int
	require.NoError(t, conn.QueryRow(t.Context(),
		`SELECT count(*) FROM pg_namespace WHERE nspname IN ('notification', 'notification_river')`).Scan(&schemas))
	require.Zero(t, schemas, "nothing was migrated")
}
