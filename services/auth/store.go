package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// store is the auth service's PostgreSQL storage. It is the one place driver errors
// become database.ErrNotFound and database.ErrConflict; nothing above it sees pgx.
type store struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
	// jobs inserts the service's jobs (jobs.go); tx is the transaction inTx began, which
	// they join.
	jobs *jobs.Client
	tx   pgx.Tx
	// users is GetCurrentUser's cache, told of every write to a user row once it has
	// committed; written collects a transaction's until then.
	users   *userCache
	written *[]uuid.UUID
}

// newStore returns a store over pool, whose search_path is the auth schema.
func newStore(pool *pgxpool.Pool, users *userCache) *store {
	return &store{pool: pool, q: dbsqlc.New(pool), users: users}
}

// inTx runs fn with a store bound to one transaction, committed when fn returns nil.
func (s *store) inTx(ctx context.Context, fn func(tx *store) error) error {
	var written []uuid.UUID
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return fn(&store{pool: s.pool, q: s.q.WithTx(tx), jobs: s.jobs, tx: tx, users: s.users, written: &written})
	})
	// After the commit, not at the write: a read between the two would cache the row
	// from before it again. (Forgetting after a rollback costs only a read.)
	s.users.forget(written...)
	return database.TranslateError(err)
}

// wroteUser notes a write to the user id's row: the cache forgets it now, or, in a
// transaction, once inTx has committed.
func (s *store) wroteUser(id uuid.UUID) {
	if s.written != nil {
		*s.written = append(*s.written, id)
		return
	}
	s.users.forget(id)
}

func one[T any](v T, err error) (T, error) { return v, database.TranslateError(err) }

func none(err error) error { return database.TranslateError(err) }

// Users.

func (s *store) createUser(ctx context.Context, p dbsqlc.UserInsertParams) (dbsqlc.User, error) {
	return one(s.q.UserInsert(ctx, p))
}
func (s *store) userByID(ctx context.Context, id uuid.UUID) (dbsqlc.User, error) {
	return one(s.q.UserGetByID(ctx, id))
}

// cachedUserByID is userByID answered from the user cache while its entry is fresh
// (userCacheTTL): for GetCurrentUser only, whose answer no decision rests on.
func (s *store) cachedUserByID(ctx context.Context, id uuid.UUID) (dbsqlc.User, error) {
	u, ok, ticket := s.users.get(id)
	if ok {
		return u, nil
	}
	u, err := s.userByID(ctx, id)
	if err == nil {
		s.users.put(u, ticket)
	}
	return u, err
}

func (s *store) userByEmail(ctx context.Context, email string) (dbsqlc.User, error) {
	return one(s.q.UserGetByEmail(ctx, email))
}
func (s *store) listUsers(ctx context.Context, after uuid.UUID, limit int32) ([]dbsqlc.User, error) {
	return one(s.q.UserList(ctx, dbsqlc.UserListParams{AfterID: after, Max: limit}))
}
func (s *store) setDisplayName(ctx context.Context, id uuid.UUID, name string) (dbsqlc.User, error) {
	defer s.wroteUser(id)
	return one(s.q.UserSetDisplayName(ctx, dbsqlc.UserSetDisplayNameParams{ID: id, DisplayName: name}))
}
func (s *store) setPassword(ctx context.Context, id uuid.UUID, hash string) (dbsqlc.User, error) {
	defer s.wroteUser(id)
	return one(s.q.UserSetPassword(ctx, dbsqlc.UserSetPasswordParams{ID: id, PasswordHash: hash}))
}
func (s *store) markEmailVerified(ctx context.Context, id uuid.UUID) (dbsqlc.User, error) {
	defer s.wroteUser(id)
	return one(s.q.UserMarkEmailVerified(ctx, id))
}
func (s *store) setDisabled(ctx context.Context, id uuid.UUID, disabled bool) (dbsqlc.User, error) {
	defer s.wroteUser(id)
	return one(s.q.UserSetDisabled(ctx, dbsqlc.UserSetDisabledParams{ID: id, Disabled: disabled}))
}

// Sessions.

func (s *store) createSession(ctx context.Context, p dbsqlc.SessionInsertParams) (dbsqlc.Session, error) {
	return one(s.q.SessionInsert(ctx, p))
}
func (s *store) session(ctx context.Context, id uuid.UUID) (dbsqlc.Session, error) {
	return one(s.q.SessionGetByID(ctx, id))
}
func (s *store) sessionForUpdate(ctx context.Context, id uuid.UUID) (dbsqlc.Session, error) {
	return one(s.q.SessionGetForUpdate(ctx, id))
}
func (s *store) liveSessions(ctx context.Context, userID uuid.UUID) ([]dbsqlc.Session, error) {
	return one(s.q.SessionListLive(ctx, userID))
}
func (s *store) touchSession(ctx context.Context, p dbsqlc.SessionTouchParams) error {
	return none(s.q.SessionTouch(ctx, p))
}
func (s *store) endSession(ctx context.Context, id uuid.UUID, reason string) (dbsqlc.Session, error) {
	return one(s.q.SessionEnd(ctx, dbsqlc.SessionEndParams{ID: id, EndReason: reason}))
}

func (s *store) liveSessionPage(ctx context.Context, now time.Time, after uuid.UUID, limit int32) ([]dbsqlc.SessionListLivePageRow, error) {
	return one(s.q.SessionListLivePage(ctx, dbsqlc.SessionListLivePageParams{Now: now, AfterID: after, Max: limit}))
}

// endUserSessions ends every live session of a user except one (uuid.Nil for none) and
// returns the ids it ended.
func (s *store) endUserSessions(ctx context.Context, userID, except uuid.UUID, reason string) ([]uuid.UUID, error) {
	return one(s.q.SessionEndAllForUser(ctx, dbsqlc.SessionEndAllForUserParams{UserID: userID, ExceptID: except, EndReason: reason}))
}

// Refresh tokens.

func (s *store) createRefreshToken(ctx context.Context, p dbsqlc.RefreshTokenInsertParams) (dbsqlc.RefreshToken, error) {
	return one(s.q.RefreshTokenInsert(ctx, p))
}
func (s *store) refreshTokenForUpdate(ctx context.Context, hash []byte) (dbsqlc.RefreshToken, error) {
	return one(s.q.RefreshTokenGetForUpdate(ctx, hash))
}
func (s *store) spendRefreshToken(ctx context.Context, id uuid.UUID, successorSeed []byte) error {
	return none(s.q.RefreshTokenSpend(ctx, dbsqlc.RefreshTokenSpendParams{ID: id, SuccessorSeed: successorSeed}))
}

// Email tokens.

func (s *store) createEmailToken(ctx context.Context, p dbsqlc.EmailTokenInsertParams) (dbsqlc.EmailToken, error) {
	return one(s.q.EmailTokenInsert(ctx, p))
}
func (s *store) consumeEmailToken(ctx context.Context, hash []byte, kind string) (dbsqlc.EmailToken, error) {
	return one(s.q.EmailTokenConsume(ctx, dbsqlc.EmailTokenConsumeParams{TokenHash: hash, Kind: kind}))
}
func (s *store) revokeEmailTokens(ctx context.Context, userID uuid.UUID, kind string) error {
	return none(s.q.EmailTokenRevokeForUser(ctx, dbsqlc.EmailTokenRevokeForUserParams{UserID: userID, Kind: kind}))
}

// API keys.

func (s *store) createAPIKey(ctx context.Context, p dbsqlc.APIKeyInsertParams) (dbsqlc.ApiKey, error) {
	return one(s.q.APIKeyInsert(ctx, p))
}
func (s *store) apiKeys(ctx context.Context, userID uuid.UUID) ([]dbsqlc.ApiKey, error) {
	return one(s.q.APIKeyListForUser(ctx, userID))
}
func (s *store) apiKeyBySecretHash(ctx context.Context, hash []byte) (dbsqlc.ApiKey, error) {
	return one(s.q.APIKeyGetBySecretHash(ctx, hash))
}
func (s *store) deleteAPIKey(ctx context.Context, id, userID uuid.UUID) error {
	_, err := s.q.APIKeyDelete(ctx, dbsqlc.APIKeyDeleteParams{ID: id, UserID: userID})
	return none(err)
}
func (s *store) touchAPIKey(ctx context.Context, id uuid.UUID) error {
	return none(s.q.APIKeyTouch(ctx, id))
}

// deleteAPIKeys deletes a user's keys, all of them or (keep set) those that session keep
// did not create, and returns the ids it deleted.
func (s *store) deleteAPIKeys(ctx context.Context, userID, keep uuid.UUID) ([]uuid.UUID, error) {
	if keep == uuid.Nil {
		return one(s.q.APIKeyDeleteAllForUser(ctx, userID))
	}
	return one(s.q.APIKeyDeleteForUserExceptSession(ctx, dbsqlc.APIKeyDeleteForUserExceptSessionParams{UserID: userID, KeepSessionID: keep}))
}

// Trusted devices.

func (s *store) createTrustedDevice(ctx context.Context, p dbsqlc.TrustedDeviceInsertParams) (dbsqlc.TrustedDevice, error) {
	return one(s.q.TrustedDeviceInsert(ctx, p))
}
func (s *store) trustedDevice(ctx context.Context, hash []byte) (dbsqlc.TrustedDevice, error) {
	return one(s.q.TrustedDeviceGetByTokenHash(ctx, hash))
}

// pruneTrustedDevices deletes a user's expired devices and all but the keep newest.
func (s *store) pruneTrustedDevices(ctx context.Context, userID uuid.UUID, keep int32) error {
	return none(s.q.TrustedDevicePrune(ctx, dbsqlc.TrustedDevicePruneParams{UserID: userID, Keep: keep}))
}
func (s *store) touchTrustedDevice(ctx context.Context, id uuid.UUID, expire time.Time) error {
	return none(s.q.TrustedDeviceTouch(ctx, dbsqlc.TrustedDeviceTouchParams{ID: id, ExpireTime: expire}))
}

// Signing keys.

func (s *store) liveSigningKeys(ctx context.Context, now time.Time) ([]dbsqlc.SigningKey, error) {
	return one(s.q.SigningKeyListLive(ctx, now))
}
func (s *store) createSigningKey(ctx context.Context, p dbsqlc.SigningKeyInsertParams) (dbsqlc.SigningKey, error) {
	return one(s.q.SigningKeyInsert(ctx, p))
}

// lockSigningKeys serialises signing-key creation between replicas until the
// transaction ends.
func (s *store) lockSigningKeys(ctx context.Context) error {
	if err := s.q.SigningKeyLock(ctx); err != nil {
		return fmt.Errorf("lock signing keys: %w", database.TranslateError(err))
	}
	return nil
}
