package main_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

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
// production: services find each other by address, prove themselves with the shared
// service secret, and a sign-up through the gateway crosses three of them.
func TestServeRunsTheMeshAsSeparateProcesses(t *testing.T) {
	t.Parallel()
	addrs := map[string]string{}
	for _, s := range services.Names() {
		addrs[s] = freeAddr(t)
	}
	common := []string{
		"BACKPLANE_DATABASE_URL=" + dbtest.NewDatabase(t),
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
