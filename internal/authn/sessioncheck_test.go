package authn

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/grpctest"
)

// sessionAuthority stands in for the auth service's CheckSession (the auth service's
// own tests run the real one against PostgreSQL): it answers from a map, counts the
// calls, and holds each call until release is closed.
type sessionAuthority struct {
	authv1.UnimplementedAuthServiceServer
	live    map[string]time.Time
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (a *sessionAuthority) CheckSession(ctx context.Context, req *authv1.CheckSessionRequest) (*authv1.CheckSessionResponse, error) {
	if a.calls.Add(1) == 1 {
		close(a.entered)
	}
	select {
	case <-a.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	exp, ok := a.live[req.GetSessionId()]
	if !ok {
		return &authv1.CheckSessionResponse{}, nil
	}
	return &authv1.CheckSessionResponse{Live: true, ExpireTime: timestamppb.New(exp)}, nil
}

func startSessionAuthority(t *testing.T, live map[string]time.Time) (*sessionAuthority, authv1.AuthServiceClient) {
	t.Helper()
	a := &sessionAuthority{live: live, entered: make(chan struct{}), release: make(chan struct{})}
	srv := grpctest.Start(t, func(r grpc.ServiceRegistrar) { authv1.RegisterAuthServiceServer(r, a) })
	return a, authv1.NewAuthServiceClient(srv.Conn)
}

// The edge's mirror, marked ready, lost a session's key: the verifier asks the auth
// service rather than refusing, passes a live session and writes its key back, and
// refuses an ended one.
func TestVerifierAsksTheAuthServiceAboutALostKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	// CheckSession takes only UUIDs, as auth's session ids are.
	login := func() (string, string) {
		sid := uuid.NewString()
		require.NoError(t, b.sessions.MarkLive(ctx, sid, time.Now().Add(time.Hour)))
		token, _, err := b.issuer.Issue("user-"+rand.Text(), sid, nil)
		require.NoError(t, err)
		return token, sid
	}
	token, sid := login()
	ended, endedSID := login()
	authority, client := startSessionAuthority(t, map[string]time.Time{sid: time.Now().Add(time.Hour)})
	close(authority.release)
	sessions := NewLiveSessions(b.sessions.rdb, WithKeyPrefix(b.sessions.prefix),
		WithSessionRecords(NewGRPCSessionRecords(client)))
	verifier, err := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: b.jwks, Sessions: sessions})
	require.NoError(t, err)
	require.NoError(t, b.sessions.rdb.Del(ctx, b.sessions.key(sid), b.sessions.key(endedSID)).Err())

	_, err = verifier.Verify(ctx, token)
	require.NoError(t, err, "a lost key is not an ended session")
	state, err := b.sessions.rdb.Get(ctx, b.sessions.key(sid)).Result()
	require.NoError(t, err)
	require.Equal(t, stateLive, state, "the key is written back")
	ttl, err := b.sessions.rdb.PTTL(ctx, b.sessions.key(sid)).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 59*time.Minute, "with the session's expiry")

	_, err = verifier.Verify(ctx, ended)
	require.ErrorIs(t, err, ErrInvalidToken, "the records said ended")
	require.EqualValues(t, 2, authority.calls.Load())
	_, err = verifier.Verify(ctx, token)
	require.NoError(t, err)
	_, err = verifier.Verify(ctx, ended)
	require.ErrorIs(t, err, ErrInvalidToken)
	require.EqualValues(t, 2, authority.calls.Load(), "answers written back spare the next lookups")
}

// A burst of checks of one lost key costs the auth service one call; a failure to
// reach it is neither "live" nor "ended".
func TestGRPCSessionRecordsShareOneCallAndNeverGuess(t *testing.T) {
	t.Parallel()
	sid := uuid.NewString()
	authority, client := startSessionAuthority(t, map[string]time.Time{sid: time.Now().Add(time.Hour)})
	records := NewGRPCSessionRecords(client)

	const burst = 20
	var wg sync.WaitGroup
	type answer struct {
		live bool
		err  error
	}
	answers := make(chan answer, burst)
	ask := func() {
		defer wg.Done()
		live, _, err := records.SessionLiveUntil(t.Context(), sid)
		answers <- answer{live, err}
	}
	wg.Add(1)
	go ask()
	select {
	case <-authority.entered:
	case <-time.After(10 * time.Second):
		close(authority.release)
		wg.Wait()
		t.Fatalf("the first lookup never reached the authority: %+v", <-answers)
	}
	wg.Add(burst - 1)
	for range burst - 1 {
		go ask()
	}
	// The others join the call in flight, which is held until they have had time to.
	time.Sleep(200 * time.Millisecond)
	close(authority.release)
	wg.Wait()
	close(answers)
	for a := range answers {
		require.NoError(t, a.err)
		require.True(t, a.live)
	}
	require.Less(t, authority.calls.Load(), int32(burst/2), "the burst shared the call in flight")

	nowhere, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = nowhere.Close() })
	_, _, err = NewGRPCSessionRecords(authv1.NewAuthServiceClient(nowhere)).SessionLiveUntil(t.Context(), sid)
	require.Equal(t, codes.Unavailable, status.Code(err), "auth out of reach is an error, not a verdict")
}
