package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/scenario"
)

// streamEnd is how a stream ended: its gRPC code, on either door.
type streamEnd struct {
	code codes.Code
	msg  string
	at   time.Time
}

// openRESTStream opens GET /v1/notifications:stream as token, waits for its first
// message, and reports how the stream ended: the code of the error line grpc-gateway
// writes last, or OK when the body just ended.
func openRESTStream(t *testing.T, base, token string) <-chan streamEnd {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v1/notifications:stream", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	lines := bufio.NewScanner(resp.Body)
	require.True(t, lines.Scan(), "the stream's first message")
	require.Contains(t, lines.Text(), `"result"`)
	ended := make(chan streamEnd, 1)
	go func() {
		defer func() { _ = resp.Body.Close() }()
		end := streamEnd{code: codes.OK}
		for lines.Scan() {
			var msg struct {
				Error *struct {
					Code    uint32 `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal(lines.Bytes(), &msg) == nil && msg.Error != nil {
				end = streamEnd{code: codes.Code(msg.Error.Code), msg: msg.Error.Message}
			}
		}
		end.at = time.Now()
		ended <- end
	}()
	return ended
}

// openGRPCStream opens StreamNotifications on the gRPC door as token, waits for its
// first message, and reports how the stream ended.
func openGRPCStream(t *testing.T, addr, token string) <-chan streamEnd {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
	stream, err := notificationv1.NewNotificationServiceClient(conn).StreamNotifications(ctx, &notificationv1.StreamNotificationsRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.NoError(t, err, "the stream's first message")
	ended := make(chan streamEnd, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				s := status.Convert(err)
				ended <- streamEnd{code: s.Code(), msg: s.Message(), at: time.Now()}
				return
			}
		}
	}()
	return ended
}

// awaitEnd waits up to within for a stream to end, and returns how.
func awaitEnd(t *testing.T, ended <-chan streamEnd, within time.Duration, what string) streamEnd {
	t.Helper()
	select {
	case e := <-ended:
		return e
	case <-time.After(within):
		t.Fatalf("%s: the stream was still open after %s", what, within)
		return streamEnd{}
	}
}

// signUpForToken signs a new user up through the REST door and returns their access
// token.
func signUpForToken(t *testing.T, a api) string {
	t.Helper()
	email := fmt.Sprintf("stream+%d@example.com", time.Now().UnixNano())
	code, body := a.call(t, http.MethodPost, "/v1/auth/signup", "",
		map[string]string{"email": email, "password": "correct horse battery", "displayName": "Grace"})
	require.Equal(t, http.StatusOK, code, body)
	return body["accessToken"].(string)
}

// Streams opened on both front doors end with UNAUTHENTICATED within a second of their
// session ending, though their access token has minutes left. Today they kept
// delivering until the client hung up.
func TestStreamsEndWithTheirSessionOnBothDoors(t *testing.T) {
	t.Parallel()
	p := startDev(t, dbtest.NewDatabase(t), "BACKPLANE_SIGNUP_MODE=instant")
	a := api{base: "http://" + p.http}

	scenario.Step(t, "logout", func(t *testing.T) {
		token := signUpForToken(t, a)
		rest := openRESTStream(t, a.base, token)
		grpcDoor := openGRPCStream(t, p.grpc, token)
		code, body := a.call(t, http.MethodPost, "/v1/auth/logout", token, map[string]any{})
		require.Equal(t, http.StatusOK, code, body)
		loggedOut := time.Now()
		for door, ended := range map[string]<-chan streamEnd{"REST": rest, "gRPC": grpcDoor} {
			e := awaitEnd(t, ended, 2*time.Second, door)
			require.Equal(t, codes.Unauthenticated, e.code, "%s: %s", door, e.msg)
			require.Less(t, e.at.Sub(loggedOut), time.Second, door)
		}
	})
	scenario.Step(t, "revoking the session from another", func(t *testing.T) {
		email := fmt.Sprintf("stream+%d@example.com", time.Now().UnixNano())
		code, body := a.call(t, http.MethodPost, "/v1/auth/signup", "",
			map[string]string{"email": email, "password": "correct horse battery", "displayName": "Grace"})
		require.Equal(t, http.StatusOK, code, body)
		first := body["accessToken"].(string)
		code, body = a.call(t, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": email, "password": "correct horse battery"})
		require.Equal(t, http.StatusOK, code, body)
		second := body["accessToken"].(string)

		rest := openRESTStream(t, a.base, first)
		grpcDoor := openGRPCStream(t, p.grpc, first)
		code, body = a.call(t, http.MethodGet, "/v1/auth/sessions", second, nil)
		require.Equal(t, http.StatusOK, code, body)
		var revoke string
		for _, s := range body["sessions"].([]any) {
			if s, _ := s.(map[string]any); s["current"] != true {
				revoke, _ = s["id"].(string)
			}
		}
		require.NotEmpty(t, revoke, "%v", body)
		code, body = a.call(t, http.MethodDelete, "/v1/auth/sessions/"+revoke, second, nil)
		require.Equal(t, http.StatusOK, code, body)
		revoked := time.Now()
		for door, ended := range map[string]<-chan streamEnd{"REST": rest, "gRPC": grpcDoor} {
			e := awaitEnd(t, ended, 2*time.Second, door)
			require.Equal(t, codes.Unauthenticated, e.code, "%s: %s", door, e.msg)
			require.Less(t, e.at.Sub(revoked), time.Second, door)
		}
	})
}

// SIGTERM with streams open on both doors ends them at once with UNAVAILABLE, which
// clients reconnect on, and the process exits within a second, logging one line for
// the stop: the streams no longer hold the shutdown for its whole timeout (20 s here).
func TestSIGTERMWithStreamsOpenExitsAtOnce(t *testing.T) {
	t.Parallel()
	p := startDev(t, dbtest.NewDatabase(t), "BACKPLANE_SHUTDOWN_TIMEOUT=20s", "BACKPLANE_SIGNUP_MODE=instant")
	a := api{base: "http://" + p.http}
	token := signUpForToken(t, a)
	rest := openRESTStream(t, a.base, token)
	grpcDoor := openGRPCStream(t, p.grpc, token)

	signalled := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
		require.NoError(t, p.err, "%s", p.out.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM\n%s", p.out.String())
	}
	took := time.Since(signalled)
	for door, ended := range map[string]<-chan streamEnd{"REST": rest, "gRPC": grpcDoor} {
		e := awaitEnd(t, ended, time.Second, door)
		require.Equal(t, codes.Unavailable, e.code, "%s: %s", door, e.msg)
	}
	require.Less(t, took, time.Second, "exit after SIGTERM\n%s", p.out.String())
	out := p.out.String()
	require.Equal(t, 1, strings.Count(out, `"msg":"stopped"`), "%s", out)
	_, stopping, found := strings.Cut(out, `"msg":"shutting down"`)
	require.True(t, found, "%s", out)
	for line := range strings.SplitSeq(stopping, "\n") {
		if strings.Contains(line, `"msg":"Client: Failed to send job insert notification"`) {
			// River's wake-up hint for a job inserted as the process stops: the job row is
			// committed and a worker's poll finds it; the hint is all that is lost.
			continue
		}
		require.NotContains(t, line, `"level":"ERROR"`, "ending streams for a shutdown is no failure")
		require.NotContains(t, line, `"level":"WARN"`, "nothing was cut off")
	}
}
