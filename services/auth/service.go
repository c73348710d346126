// Package auth is the identity service: accounts, sessions, access and refresh tokens, and API
// keys. It is the only service that sees passwords.
//
// How it holds together:
//
//   - Passwords are argon2id PHC strings (package password), hashed a bounded number at a
//     time; unknown emails cost a dummy comparison, so logins do not reveal accounts.
//   - Access tokens are Ed25519 JWTs (package authn). Their keys live in the signing_keys
//     table, sealed with BACKPLANE_KEY_ENCRYPTION_KEY when set, so every replica signs
//     with the same key; a key is published ten minutes before it signs and until its
//     last token expires.
//   - Sessions are rows in PostgreSQL, the record. Redis mirrors which are live (and
//     tombstones those that ended) for the edge's per-request check; the service rebuilds
//     the mirror from PostgreSQL when Redis loses it.
//   - Refresh tokens, emailed tokens and API keys are 256-bit random secrets stored as
//     SHA-256 digests and found by digest, so no secret is compared in Go.
//   - Failed logins are counted in Redis per account and per address.
//
// Files: server.go builds the Server; one file per resource (account.go, sessions.go,
// email.go, apikeys.go, admin.go, jwks.go); convert.go turns rows into protos; store.go
// is the storage boundary over the sqlc code in dbsqlc.
package auth

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"sync"
	"time"

	"google.golang.org/grpc"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/mesh"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the service's schema migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		// The directory is embedded above; fs.Sub fails only on an invalid name.
		return migrationFiles
	}
	return sub
}

// Service describes the auth service to the process that runs it.
func Service() mesh.Service {
	return mesh.Service{
		Name:       "auth",
		Needs:      []string{"notification"},
		Migrations: Migrations(),
		Start: func(ctx context.Context, deps mesh.Deps) (*mesh.Instance, error) {
			return start(ctx, deps, "")
		},
	}
}

// start builds the server and starts its background work: reloading signing keys and
// keeping the live-session mirror. redisPrefix is empty in production; tests set it to
// keep their keys apart on the shared Redis. The service checks credentials itself, with
// its own verifier and key store, rather than asking itself over the network.
func start(ctx context.Context, deps mesh.Deps, redisPrefix string) (*mesh.Instance, error) {
	cfg, err := LoadConfig(deps.Config.PublicURL, deps.Getenv)
	if err != nil {
		return nil, err
	}
	conn := deps.Peers["notification"]
	if conn == nil {
		return nil, errors.New("auth: no connection to the notification service")
	}
	// The connection carries this process's service credential, which opens Send.
	mailer := notificationMailer{client: notificationv1.NewNotificationServiceClient(conn)}
	if len(cfg.KeyEncryptionKey) == 0 {
		deps.Logger.WarnContext(ctx, "BACKPLANE_KEY_ENCRYPTION_KEY is unset: token-signing keys are stored unsealed")
	}
	srv, err := New(ctx, cfg, Dependencies{Logger: deps.Logger, DB: deps.DB, Redis: deps.Redis, Mailer: mailer, RedisPrefix: redisPrefix})
	if err != nil {
		return nil, err
	}

	keepCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var loops sync.WaitGroup
	loops.Go(func() { srv.KeepKeys(keepCtx) })
	// Twice a second, so the edge answers UNAVAILABLE for at most about a second after
	// Redis loses its contents.
	loops.Go(func() { srv.KeepSessionMirror(keepCtx, 500*time.Millisecond) })
	go func() {
		loops.Wait()
		close(done)
	}()
	stop := func(ctx context.Context) error {
		cancel()
		waited := make(chan struct{})
		go func() {
			<-done
			srv.Wait()
			close(waited)
		}()
		select {
		case <-waited:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return &mesh.Instance{
		Register: func(reg grpc.ServiceRegistrar) { authv1.RegisterAuthServiceServer(reg, srv) },
		Stop:     stop,
		Tokens:   srv.Verifier(),
		APIKeys:  srv.APIKeys(),
	}, nil
}
