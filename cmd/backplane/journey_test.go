package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/scenario"
)

// api is a REST client of a running `backplane dev`.
type api struct {
	base string
}

func (a api) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, a.base+path, r)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	out := map[string]any{}
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), "%s %s: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

// eventually polls a call until it answers want, for changes that take effect within a
// second at the edge.
func (a api) eventually(t *testing.T, want int, method, path, token string) {
	t.Helper()
	var got int
	require.Eventually(t, func() bool {
		got, _ = a.call(t, method, path, token, nil)
		return got == want
	}, 3*time.Second, 50*time.Millisecond, "%s %s never answered %d (last %d)", method, path, want, got)
}

var verifyLink = regexp.MustCompile(`/verify-email\?token=([A-Za-z0-9_-]+)`)

// verificationToken waits for the verification email in the dev mailbox and reads the
// token from its plain-text part.
func verificationToken(t *testing.T, dataDir, to string) string {
	t.Helper()
	var token string
	require.Eventually(t, func() bool {
		files, _ := filepath.Glob(filepath.Join(dataDir, "mailbox", "*.eml"))
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			msg, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil || !strings.Contains(msg.Header.Get("To"), to) {
				continue
			}
			_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
			require.NoError(t, err)
			parts := multipart.NewReader(msg.Body, params["boundary"])
			for {
				part, err := parts.NextRawPart()
				if err != nil {
					break
				}
				body, _ := io.ReadAll(quotedprintable.NewReader(part))
				if m := verifyLink.FindSubmatch(body); m != nil {
					token = string(m[1])
					return true
				}
			}
		}
		return false
	}, 15*time.Second, 100*time.Millisecond, "no verification email reached the mailbox")
	return token
}

// TestAccountJourneyThroughTheWholeMesh drives one account through the REST door of a
// real `backplane dev`: the gateway checks tokens against auth's keys and the live
// sessions in Redis, auth sends its emails through notification with a service
// credential, and notification looks the address up in auth the same way.
func TestAccountJourneyThroughTheWholeMesh(t *testing.T) {
	t.Parallel()
	p := startDev(t, dbtest.NewDatabase(t), "BACKPLANE_REFRESH_REUSE_GRACE=0s")
	defer p.stop(t)
	a := api{base: "http://" + p.http}
	email := fmt.Sprintf("ada+%d@example.com", time.Now().UnixNano())
	var access, refresh string

	var signedUp map[string]any
	scenario.Step(t, "sign up: check your email, no tokens", func(t *testing.T) {
		var code int
		code, signedUp = a.call(t, "POST", "/v1/auth/signup", "", map[string]string{"email": email, "password": "correct horse battery", "displayName": "Ada"})
		require.Equal(t, http.StatusOK, code, signedUp)
		require.Equal(t, true, signedUp["emailVerificationRequired"])
		require.Empty(t, signedUp["accessToken"])
		require.Empty(t, signedUp["refreshToken"])
		require.NotContains(t, signedUp, "user", "naming the account would tell a taken address from a new one")
	})
	scenario.Step(t, "the emailed link verifies and signs in, in the shape of a login", func(t *testing.T) {
		code, body := a.call(t, "POST", "/v1/auth/email:verify", "", map[string]string{"token": verificationToken(t, p.dataDir, email)})
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, "Bearer", body["tokenType"])
		access, refresh = body["accessToken"].(string), body["refreshToken"].(string)
		code, body = a.call(t, "GET", "/v1/users/me", access, nil)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, true, body["user"].(map[string]any)["emailVerified"])
	})
	scenario.Step(t, "signing up again answers alike, and the owner is told", func(t *testing.T) {
		code, body := a.call(t, "POST", "/v1/auth/signup", "", map[string]string{"email": email, "password": "another horse battery", "displayName": "Eve"})
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, signedUp, body)
		require.Eventually(t, func() bool {
			return mailboxCount(t, p.dataDir)[email]["Someone tried to sign up with your email address"] == 1
		}, 15*time.Second, 100*time.Millisecond)
	})
	scenario.Step(t, "the JWKS", func(t *testing.T) {
		code, body := a.call(t, "GET", "/.well-known/jwks.json", "", nil)
		require.Equal(t, http.StatusOK, code)
		require.NotEmpty(t, body["keys"], "the JWKS is an object with keys, as RFC 7517 has it")
	})
	// An API key with one scope opens what that scope grants, and stops working within a
	// second of being deleted.
	scenario.Step(t, "an API key", func(t *testing.T) {
		code, body := a.call(t, "POST", "/v1/api-keys", access, map[string]any{"displayName": "ci", "scopes": []string{"profile:read"}})
		require.Equal(t, http.StatusOK, code, body)
		secret := body["secret"].(string)
		keyID := body["apiKey"].(map[string]any)["id"].(string)
		require.True(t, strings.HasPrefix(secret, "bpk_"))
		code, _ = a.call(t, "GET", "/v1/users/me", secret, nil)
		require.Equal(t, http.StatusOK, code)
		code, _ = a.call(t, "PATCH", "/v1/users/me", secret, map[string]string{"displayName": "Eve"})
		require.Equal(t, http.StatusForbidden, code)
		code, _ = a.call(t, "DELETE", "/v1/api-keys/"+keyID, access, nil)
		require.Equal(t, http.StatusOK, code)
		a.eventually(t, http.StatusUnauthorized, "GET", "/v1/users/me", secret)
	})
	// However the caller authenticates, the edge does not route INTERNAL RPCs.
	scenario.Step(t, "no INTERNAL RPC at the edge", func(t *testing.T) {
		conn, err := grpc.NewClient(p.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer func() { _ = conn.Close() }()
		_, err = authv1.NewAuthServiceClient(conn).LookupUser(t.Context(), &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_Email{Email: email}})
		require.Equal(t, codes.Unimplemented, status.Code(err))
	})
	// Refresh rotates; presenting the spent token again ends the session, and its access
	// tokens stop working at the edge within a second.
	scenario.Step(t, "refresh, then reuse the spent token", func(t *testing.T) {
		code, body := a.call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refreshToken": refresh})
		require.Equal(t, http.StatusOK, code, body)
		newAccess := body["accessToken"].(string)
		code, _ = a.call(t, "GET", "/v1/users/me", newAccess, nil)
		require.Equal(t, http.StatusOK, code)
		code, _ = a.call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refreshToken": refresh})
		require.Equal(t, http.StatusUnauthorized, code)
		a.eventually(t, http.StatusUnauthorized, "GET", "/v1/users/me", newAccess)
		a.eventually(t, http.StatusUnauthorized, "GET", "/v1/users/me", access)
	})
	// The password still works: a new session, and the inbox answers for it.
	scenario.Step(t, "log in again and read the inbox", func(t *testing.T) {
		code, body := a.call(t, "POST", "/v1/auth/login", "", map[string]string{"email": email, "password": "correct horse battery"})
		require.Equal(t, http.StatusOK, code, body)
		code, body = a.call(t, "GET", "/v1/notifications", body["accessToken"].(string), nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "unreadCount")
	})
}

func TestDevResetStartsFromNothing(t *testing.T) {
	t.Parallel()
	db := dbtest.NewDatabase(t)
	// Instant sign-up tells a taken address (409) from a free one, which the end checks.
	p := startDev(t, db, "BACKPLANE_SIGNUP_MODE=instant")
	a := api{base: "http://" + p.http}
	account := map[string]any{"email": "reset@example.com", "password": "correct horse battery", "displayName": "Reset"}
	code, body := a.call(t, http.MethodPost, "/v1/auth/signup", "", account)
	require.Equal(t, http.StatusOK, code, body)
	verificationToken(t, p.dataDir, "reset@example.com")
	p.stop(t)

	p = startDevIn(t, db, p.dataDir, []string{"--reset"}, "BACKPLANE_SIGNUP_MODE=instant")
	require.Contains(t, p.out.String(), "every account and all data are gone", "reset says what it did")
	entries, err := os.ReadDir(filepath.Join(p.dataDir, "mailbox"))
	if err == nil {
		require.Empty(t, entries, "the mailbox is emptied")
	}
	a = api{base: "http://" + p.http}
	code, _ = a.call(t, http.MethodPost, "/v1/auth/login", "", map[string]any{"email": "reset@example.com", "password": "correct horse battery"})
	require.Equal(t, http.StatusUnauthorized, code, "the account is gone")
	code, body = a.call(t, http.MethodPost, "/v1/auth/signup", "", account)
	require.Equal(t, http.StatusOK, code, "the address is free again: %v", body)
	p.stop(t)
}

func TestDevResetRefusesADatabaseElsewhere(t *testing.T) {
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), binary, "dev", "--reset")
	cmd.Env = append(os.Environ(),
		"BACKPLANE_DATABASE_URL=postgres://postgres@db.example.com:5432/prod",
		"BACKPLANE_HTTP_ADDR="+freeAddr(t), "BACKPLANE_GRPC_ADDR="+freeAddr(t), "BACKPLANE_ADMIN_ADDR="+freeAddr(t),
		"BACKPLANE_DATA_DIR="+t.TempDir(), "BACKPLANE_REDIS_URL=",
	)
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), `runs only against a PostgreSQL on this machine; BACKPLANE_DATABASE_URL names \"db.example.com\"`)

	out, err = exec.CommandContext(t.Context(), binary, "dev", "--wipe").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), `unknown argument "--wipe"`)
}
