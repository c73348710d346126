package asset

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/services/asset/dbsqlc"
)

// store is the asset service's PostgreSQL storage. It is the one place driver errors
// become database.ErrNotFound and database.ErrConflict; nothing above it sees pgx.
type store struct {
	pool *pgxpool.Pool
	tx   pgx.Tx // the transaction of a store from inTx; nil otherwise
	q    *dbsqlc.Queries
}

// newStore returns a store over pool, whose search_path is the asset schema.
func newStore(pool *pgxpool.Pool) *store {
	return &store{pool: pool, q: dbsqlc.New(pool)}
}

// inTx runs fn with a store bound to one transaction, committed when fn returns nil.
func (s *store) inTx(ctx context.Context, fn func(tx *store) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return fn(&store{pool: s.pool, tx: tx, q: s.q.WithTx(tx)})
	})
	return database.TranslateError(err)
}

func one[T any](v T, err error) (T, error) { return v, database.TranslateError(err) }

func none(err error) error { return database.TranslateError(err) }

// Assets.

func (s *store) insertAsset(ctx context.Context, p dbsqlc.AssetInsertParams) (dbsqlc.Asset, error) {
	return one(s.q.AssetInsert(ctx, p))
}

// assetForOwner returns owner's live asset id; another owner's is database.ErrNotFound.
func (s *store) assetForOwner(ctx context.Context, id, owner uuid.UUID) (dbsqlc.Asset, error) {
	return one(s.q.AssetGetForOwner(ctx, dbsqlc.AssetGetForOwnerParams{ID: id, OwnerUserID: owner}))
}

// liveAsset returns the live asset id, whoever owns it.
func (s *store) liveAsset(ctx context.Context, id uuid.UUID) (dbsqlc.Asset, error) {
	return one(s.q.AssetGetLive(ctx, id))
}

func (s *store) listForOwner(ctx context.Context, p dbsqlc.AssetListForOwnerParams) ([]dbsqlc.Asset, error) {
	return one(s.q.AssetListForOwner(ctx, p))
}

func (s *store) listAll(ctx context.Context, p dbsqlc.AssetListAllParams) ([]dbsqlc.Asset, error) {
	return one(s.q.AssetListAll(ctx, p))
}

// markReady records a PENDING asset's stored bytes; database.ErrNotFound when it is no
// longer PENDING.
func (s *store) markReady(ctx context.Context, p dbsqlc.AssetMarkReadyParams) (dbsqlc.Asset, error) {
	return one(s.q.AssetMarkReady(ctx, p))
}

func (s *store) updateAsset(ctx context.Context, p dbsqlc.AssetUpdateParams) (dbsqlc.Asset, error) {
	return one(s.q.AssetUpdate(ctx, p))
}

func (s *store) markDeleted(ctx context.Context, id, owner uuid.UUID, now time.Time) (dbsqlc.Asset, error) {
	return one(s.q.AssetMarkDeleted(ctx, dbsqlc.AssetMarkDeletedParams{ID: id, OwnerUserID: owner, Now: now}))
}

func (s *store) expirePending(ctx context.Context, cutoff, now time.Time, limit int32) ([]dbsqlc.Asset, error) {
	return one(s.q.AssetExpirePending(ctx, dbsqlc.AssetExpirePendingParams{Cutoff: cutoff, Now: now, Max: limit}))
}

func (s *store) listDeleted(ctx context.Context, limit int32) ([]dbsqlc.Asset, error) {
	return one(s.q.AssetListDeleted(ctx, limit))
}

func (s *store) purge(ctx context.Context, id uuid.UUID) error {
	return none(s.q.AssetPurge(ctx, id))
}

// knownKeys returns which of keys hold an asset's bytes that are not yet erased.
func (s *store) knownKeys(ctx context.Context, keys []string) ([]string, error) {
	return one(s.q.AssetObjectKeysKnown(ctx, keys))
}

// Storage levels.

// addLevel adds delta to owner's storage level and returns the new level, locking the
// owner's row until the transaction ends.
func (s *store) addLevel(ctx context.Context, owner uuid.UUID, delta int64, now time.Time) (int64, error) {
	return one(s.q.StorageLevelAdd(ctx, dbsqlc.StorageLevelAddParams{OwnerUserID: owner, Delta: delta, Now: now}))
}
