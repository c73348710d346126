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
//   - Sign-in attempts are reserved in Redis before any hashing, per account and address,
//     per account, per address, or per known device (lockout.go, devices.go), so that
//     parallel guesses all count and strangers' guesses cannot lock the owner out.
//
// Files, as in every service (services/README.md): service.go describes the service to
// the process; config.go reads its settings; server.go builds the Server; one file per
// resource (account.go, sessions.go, email.go, apikeys.go, admin.go, jwks.go, devices.go);
// convert.go turns rows into protos; store.go is the storage boundary over the sqlc code
// in dbsqlc. notifier.go is its edge to the notification service; jobs.go holds the
// River jobs that send the security emails, inserted in the transactions that cause
// them; fingerprint.go tells a sign-in from a new client, which alone gets an email.
package auth

import (
	"context"
	"embed"
	"io/fs"
	"sync"
	"time"

	"google.golang.org/grpc"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/service"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations holds the NNNN_name.up.sql / .down.sql files at its root, as the migrator
// expects.
func migrations() fs.FS {
	// fs.Sub fails only for an invalid path name, and this one is a valid constant.
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// Definition describes the auth service to the process that runs it. It is the
// mesh's credential authority: it issues access tokens and API keys, and checks them
// itself, while every other server asks it.
func Definition() service.Definition {
	return service.Define(service.Spec[Config]{
		Name:       "auth",
		Needs:      []string{"notification"},
		Authority:  true,
		Migrations: migrations(),
		// Security emails are River jobs, inserted with the changes that cause them.
		Jobs: true,
		APIs: []service.API{
			service.PublicAPI(authv1.File_backplane_auth_v1_auth_proto.Services().ByName("AuthService"),
				authv1.NewAuthServiceClient, authv1.RegisterAuthServiceHandlerClient),
		},
		LoadConfig: LoadConfig,
		// Dev mode stores the keys unsealed, with a warning; production never does.
		ServeRequires: map[string]string{
			"BACKPLANE_KEY_ENCRYPTION_KEY": "it seals the token-signing keys stored in PostgreSQL (32 bytes, base64: openssl rand -base64 32)",
		},
		Start: func(ctx context.Context, cfg Config, deps service.Deps) (*service.Instance, error) {
			srv, err := New(ctx, cfg, deps)
			if err != nil {
				return nil, err
			}
			if err := srv.jobs.Start(ctx); err != nil {
				return nil, err
			}
			return srv.start(ctx), nil
		},
	})
}

// start starts the server's background work, reloading signing keys and keeping the
// live-session mirror, and returns it as an instance that checks credentials itself,
// with its own verifier and key store, rather than asking itself over the network.
func (s *Server) start(ctx context.Context) *service.Instance {
	keepCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var loops sync.WaitGroup
	loops.Go(func() { s.KeepKeys(keepCtx) })
	// Twice a second, so the edge answers UNAVAILABLE for at most about a second after
	// Redis loses its contents.
	loops.Go(func() { s.KeepSessionMirror(keepCtx, 500*time.Millisecond) })
	go func() {
		loops.Wait()
		close(done)
	}()
	stop := func(ctx context.Context) error {
		cancel()
		// Jobs still queued stay in PostgreSQL for the next replica to start.
		jobsErr := s.jobs.Stop(ctx)
		select {
		case <-done:
			return jobsErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return &service.Instance{
		Register: func(reg grpc.ServiceRegistrar) { authv1.RegisterAuthServiceServer(reg, s) },
		Stop:     stop,
		Jobs:     s.jobs,
		Tokens:   s.Verifier(),
		APIKeys:  s.APIKeys(),
	}
}
