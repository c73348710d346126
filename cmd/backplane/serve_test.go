package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/services"
)

// piece is one `backplane serve` process.
type piece struct {
	name   string
	cmd    *exec.Cmd
	out    *syncBuffer
	admin  string
	exited chan error
}

func servePiece(t *testing.T, name string, env []string) *piece {
	t.Helper()
	p := &piece{name: name, out: &syncBuffer{}, admin: freeAddr(t), exited: make(chan error, 1)}
	p.cmd = exec.Command(binary, "serve", name)
	p.cmd.Env = append(append(os.Environ(), env...), "BACKPLANE_ADMIN_ADDR="+p.admin)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(20 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
	})
	return p
}

func (p *piece) ready(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			t.Fatalf("backplane serve %s exited: %v\n%s", p.name, err, p.out.String())
		default:
		}
		if resp, err := http.Get("http://" + p.admin + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("backplane serve %s was not ready within 30s\n%s", p.name, p.out.String())
}

// TestServeRunsTheMeshAsSeparateProcesses runs every piece as its own process, as in
// production with the Helm chart: `backplane migrate` first, then pieces that do not
// migrate; services find each other by address, prove themselves with the shared
// service secret, and a sign-up through the gateway crosses three of them.
func TestServeRunsTheMeshAsSeparateProcesses(t *testing.T) {
	t.Parallel()
	addrs := map[string]string{}
	for _, s := range services.Names() {
		addrs[s] = freeAddr(t)
	}
	dbURL := dbtest.NewDatabase(t)
	migrate := exec.Command(binary, "migrate")
	migrate.Env = append(os.Environ(), "BACKPLANE_DATABASE_URL="+dbURL)
	out, err := migrate.CombinedOutput()
	require.NoError(t, err, "%s", out)
	common := []string{
		"BACKPLANE_MIGRATE_ON_START=false",
		"BACKPLANE_DATABASE_URL=" + dbURL,
		"BACKPLANE_REDIS_URL=" + redistest.URL(),
		"BACKPLANE_SERVICE_TOKEN_SECRET=test-secret-test-secret-test-secret-0123",
		"BACKPLANE_PUBLIC_URL=https://app.backplane.test",
		"BACKPLANE_DATA_DIR=" + t.TempDir(),
		"BACKPLANE_LOG_FORMAT=text",
	}
	for _, s := range services.Names() {
		common = append(common, fmt.Sprintf("BACKPLANE_%s_ADDR=%s", strings.ToUpper(s), addrs[s]))
	}
	var pieces []*piece
	for _, s := range services.Names() {
		pieces = append(pieces, servePiece(t, s, append(common, "BACKPLANE_GRPC_ADDR="+addrs[s])))
	}
	httpAddr := freeAddr(t)
	gw := servePiece(t, "gateway", append(common, "BACKPLANE_HTTP_ADDR="+httpAddr, "BACKPLANE_GRPC_ADDR="+freeAddr(t)))
	for _, p := range append(pieces, gw) {
		p.ready(t)
	}

	a := api{t: t, base: "http://" + httpAddr}
	email := fmt.Sprintf("grace+%d@example.com", time.Now().UnixNano())
	code, body := a.call("POST", "/v1/auth/signup", "", map[string]string{"email": email, "password": "correct horse battery", "displayName": "Grace"})
	require.Equal(t, http.StatusOK, code, body)
	access := body["tokens"].(map[string]any)["accessToken"].(string)
	code, body = a.call("GET", "/v1/users/me", access, nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, email, body["user"].(map[string]any)["email"])
	code, _ = a.call("GET", "/v1/notifications", access, nil)
	require.Equal(t, http.StatusOK, code, "notification checks the token on its own")

	// SIGTERM: every piece drains and exits cleanly.
	for _, p := range append([]*piece{gw}, pieces...) {
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		select {
		case err := <-p.exited:
			require.NoError(t, err, "%s\n%s", p.name, p.out.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not exit after SIGTERM", p.name)
		}
	}
}

// A piece told not to migrate (BACKPLANE_MIGRATE_ON_START=false) refuses a database that
// nobody migrated, naming the remedy, and changes nothing in it.
func TestServeWithoutMigrateOnStartNeedsAMigratedDatabase(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	cmd := exec.Command(binary, "serve", "notification")
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
