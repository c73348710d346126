package notification

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/backplane/backplane/internal/service"
)

// upgrade moves the emails that a release before River left in its outbox table onto
// River, then drops the table (store.upgradeOutbox). The process runs it after the
// service's migrations and River's (Definition.Upgrade), holding the migration lock;
// once the table is gone it finds nothing to do.
//
// Releases before River may still be running during a rolling deploy. Their Send waits
// for the upgrade, then fails on the missing table, so its caller retries against a
// replica of this release instead of writing an email nobody would read. An email one of
// them is sending at that moment cannot be recorded any more: its job is due when the
// old worker's lease ends, and it may be sent twice, the at-least-once case of a crash
// between send and record (README.md).
func upgrade(ctx context.Context, db *pgxpool.Pool, log *slog.Logger) error {
	inserter, err := newInserter(db, service.Deps{Logger: log})
	if err != nil {
		return err
	}
	moved, err := newStore(db, inserter).upgradeOutbox(ctx)
	if err != nil {
		return fmt.Errorf("move the outbox onto River: %w", err)
	}
	if moved >= 0 {
		log.InfoContext(ctx, "the outbox moved onto River: each unsent email is a job, and the outbox table is dropped", "emails", moved)
	}
	return nil
}
