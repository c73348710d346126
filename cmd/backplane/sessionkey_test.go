package main_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/scenario"
)

// sessionKeyOf is the Redis key of the live-session mirror for the session an access
// token speaks for (its sid claim; the signature is the edge's business, not this test's).
func sessionKeyOf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims struct {
		SessionID string `json:"sid"`
	}
	require.NoError(t, json.Unmarshal(raw, &claims))
	require.NotEmpty(t, claims.SessionID)
	return "backplane:session:" + claims.SessionID
}

// A live session's key lost from Redis (eviction, failover) while the mirror stays marked
// ready: the edge, which has no PostgreSQL of auth's, refused the session with 401,
// though auth's own port accepted it. Now the edge asks auth, which answers from
// PostgreSQL and writes the key back; an ended session stays refused; with auth down a
// lost key is 503 / UNAVAILABLE, never 401 and never a pass. On both front doors, to a
// service other than auth (notification), as separate processes.
func TestALostSessionKeyIsAskedAboutAtAuthOnBothDoors(t *testing.T) {
	t.Parallel()
	m := startServeMesh(t)
	a := api{base: "http://" + m.http}
	rdb := redistest.Client(t)
	conn, err := grpc.NewClient(m.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	notifications := notificationv1.NewNotificationServiceClient(conn)

	email := fmt.Sprintf("lost-key+%d@example.com", time.Now().UnixNano())
	code, body := a.call(t, http.MethodPost, "/v1/auth/signup", "", map[string]string{"email": email, "password": "correct horse battery", "displayName": "Grace"})
	require.Equal(t, http.StatusOK, code, body)
	token := body["accessToken"].(string)
	key := sessionKeyOf(t, token)

	// onBothDoors loses key (unless empty) before each door's call, past the edge's
	// 250 ms liveness cache, and returns the REST status and the gRPC code.
	onBothDoors := func(t *testing.T, token, key string) (int, codes.Code) {
		t.Helper()
		lose := func() {
			if key != "" {
				require.NoError(t, rdb.Del(t.Context(), key).Err())
				time.Sleep(300 * time.Millisecond)
			}
		}
		lose()
		code, body := a.call(t, http.MethodGet, "/v1/notifications", token, nil)
		require.NotEqual(t, http.StatusInternalServerError, code, body)
		lose()
		ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
		_, err := notifications.ListNotifications(ctx, &notificationv1.ListNotificationsRequest{})
		return code, status.Code(err)
	}

	scenario.Step(t, "a live session's lost key: served on both doors, and the key is back", func(t *testing.T) {
		code, grpcCode := onBothDoors(t, token, key)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, codes.OK, grpcCode)
		state, err := rdb.Get(t.Context(), key).Result()
		require.NoError(t, err, "auth wrote the key back")
		require.Equal(t, "1", state)
		ttl, err := rdb.PTTL(t.Context(), key).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, time.Hour, "with the session's expiry (the refresh token's lifetime)")
	})
	scenario.Step(t, "an ended session's lost key: refused on both doors", func(t *testing.T) {
		code, body := a.call(t, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": email, "password": "correct horse battery"})
		require.Equal(t, http.StatusOK, code, body)
		ended := body["accessToken"].(string)
		code, body = a.call(t, http.MethodPost, "/v1/auth/logout", ended, map[string]any{})
		require.Equal(t, http.StatusOK, code, body)
		code, grpcCode := onBothDoors(t, ended, sessionKeyOf(t, ended))
		require.Equal(t, http.StatusUnauthorized, code)
		require.Equal(t, codes.Unauthenticated, grpcCode)
	})
	scenario.Step(t, "CheckSession is not routed on either door", func(t *testing.T) {
		code, _ := a.call(t, http.MethodPost, "/backplane.auth.v1.AuthService/CheckSession", token, map[string]string{"sessionId": key[len("backplane:session:"):]})
		require.Contains(t, []int{http.StatusNotFound, http.StatusNotImplemented}, code)
		ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
		_, err := authv1.NewAuthServiceClient(conn).CheckSession(ctx, &authv1.CheckSessionRequest{SessionId: key[len("backplane:session:"):]})
		require.Equal(t, codes.Unimplemented, status.Code(err))
	})
	scenario.Step(t, "auth down: a present key still serves, a lost one is UNAVAILABLE on both doors", func(t *testing.T) {
		m.pieces["auth"].stop(t)
		code, grpcCode := onBothDoors(t, token, "")
		require.Equal(t, http.StatusOK, code, "the mirror answers without auth")
		require.Equal(t, codes.OK, grpcCode)
		code, grpcCode = onBothDoors(t, token, key)
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Equal(t, codes.Unavailable, grpcCode)
	})
}
