package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

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

	scenario.Step(t, "every piece becomes ready", func(t *testing.T) {
		for _, p := range append(pieces, gw) {
			p.waitReady(t, p.admin)
		}
	})
	scenario.Step(t, "a sign-up crosses three services", func(t *testing.T) {
		a := api{base: "http://" + httpAddr}
		email := fmt.Sprintf("grace+%d@example.com", time.Now().UnixNano())
		code, body := a.call(t, "POST", "/v1/auth/signup", "", map[string]string{"email": email, "password": "correct horse battery", "displayName": "Grace"})
		require.Equal(t, http.StatusOK, code, body)
		access := body["tokens"].(map[string]any)["accessToken"].(string)
		code, body = a.call(t, "GET", "/v1/users/me", access, nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, email, body["user"].(map[string]any)["email"])
		code, _ = a.call(t, "GET", "/v1/notifications", access, nil)
		require.Equal(t, http.StatusOK, code, "notification checks the token on its own")
	})
	scenario.Step(t, "every piece drains and exits cleanly on SIGTERM", func(t *testing.T) {
		for _, p := range append([]*piece{gw}, pieces...) {
			p.stop(t)
		}
	})
}
