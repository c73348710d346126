package grpcserver_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/logging"
)

// slowStore is a stand-in service whose query outlasts any caller's patience, and which
// reports the failure as services do: wrapped as INTERNAL, the cause hidden.
type slowStore struct {
	authv1.UnimplementedAuthServiceServer
	pool *pgxpool.Pool
	// entered is told when a call reaches the handler.
	entered chan struct{}
}

func (s *slowStore) Login(ctx context.Context, _ *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	if _, err := s.pool.Exec(ctx, "SELECT pg_sleep(30)"); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not create the account")
	}
	return &authv1.LoginResponse{}, nil
}

// TestACallerGivingUpIsNoInternalError: a query cut short by the caller's deadline or
// cancellation ends the call DEADLINE_EXCEEDED or CANCELED on the server's side too, not
// INTERNAL, and nothing about it is logged at error level.
func TestACallerGivingUpIsNoInternalError(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), dbtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	cases := []struct {
		name, code string
		// server is what the server answers: a client whose deadline passes resets the
		// stream, and that reset often reaches the server before its own copy of the
		// deadline fires, so the server may see a cancellation.
		server []string
		// call is the client's; entered tells when the call has reached the handler.
		call func(client authv1.AuthServiceClient, entered <-chan struct{}) error
	}{
		// A second: on a loaded machine a shorter deadline could pass before the call
		// reached the server, which would then have nothing to log.
		{"deadline", "DeadlineExceeded", []string{"DeadlineExceeded", "Canceled"}, func(client authv1.AuthServiceClient, _ <-chan struct{}) error {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			_, err := client.Login(ctx, &authv1.LoginRequest{Email: "ada@example.com", Password: "x"})
			return err
		}},
		{"canceled", "Canceled", []string{"Canceled"}, func(client authv1.AuthServiceClient, entered <-chan struct{}) error {
			ctx, cancel := context.WithCancel(t.Context())
			// Once the server has the call: cancelled sooner, the call might never reach
			// it, and it would have nothing to log.
			go func() {
				select {
				case <-entered:
				case <-time.After(10 * time.Second):
				}
				cancel()
			}()
			_, err := client.Login(ctx, &authv1.LoginRequest{Email: "ada@example.com", Password: "x"})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			log := logging.New(logs, logging.Options{Level: slog.LevelDebug})
			store := &slowStore{pool: pool, entered: make(chan struct{}, 1)}
			s := grpctest.Start(t, func(r grpc.ServiceRegistrar) { authv1.RegisterAuthServiceServer(r, store) },
				grpctest.WithLogger(log))
			require.Equal(t, c.code, status.Code(c.call(authv1.NewAuthServiceClient(s.Conn), store.entered)).String())
			// The server finishes the call after the client has left: wait for its line.
			var lines []logLine
			require.Eventually(t, func() bool {
				lines = accessLines(t, logs.String())
				return len(lines) == 1
			}, 10*time.Second, 10*time.Millisecond, logs.String())
			require.Contains(t, c.server, lines[0].Code, "the server's own answer: %s", logs.String())
			require.Equal(t, map[string]string{"DeadlineExceeded": "WARN", "Canceled": "INFO"}[lines[0].Code], lines[0].Level)
			require.Contains(t, logs.String(), "request ended by its caller", "the hidden cause is logged, for which step was slow")
			for raw := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
				var l logLine
				require.NoError(t, json.Unmarshal([]byte(raw), &l), raw)
				require.NotEqual(t, "ERROR", l.Level, "a caller giving up is not a bug: %s", raw)
			}
		})
	}
}
