package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/dbtest"
)

// An operator upgrades from the release whose notification service kept its emails in an
// outbox table: `backplane migrate`, then the new release delivers the emails the old one
// left unsent, and none that it had sent.
func TestUpgradeFromTheOutboxDeliversWhatWasLeftUnsent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.NewDatabase(t)

	// The release before: notification's schema as its first migration left it, and two
	// emails in the outbox, one sent and one waiting.
	old := fstest.MapFS{}
	files, err := filepath.Glob("../../services/notification/migrations/0001_*.sql")
	require.NoError(t, err)
	require.Len(t, files, 2)
	for _, f := range files {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		old[filepath.Base(f)] = &fstest.MapFile{Data: body}
	}
	pool, err := database.Open(ctx, dbURL, database.WithSchema("notification"))
	require.NoError(t, err)
	defer pool.Close()
	_, err = database.Migrate(ctx, pool, "notification", old)
	require.NoError(t, err)
	waiting, sent := uuid.New(), uuid.New()
	for id, status := range map[uuid.UUID]string{waiting: "pending", sent: "sent"} {
		_, err = pool.Exec(ctx, `INSERT INTO notification (id, idempotency_key, email, category, template, title, body_text, body_html, channels)
			VALUES ($1, $2, 'ada@example.com', 'account', 'message', 'Left in the outbox', 'text', '<p>html</p>', ARRAY['email'])`, id, id.String())
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `INSERT INTO outbox (notification_id, channel, status, attempts) VALUES ($1, 'email', $2, 1)`, id, status)
		require.NoError(t, err)
	}

	migrate := exec.CommandContext(t.Context(), binary, "migrate")
	migrate.Env = append(os.Environ(), "BACKPLANE_DATABASE_URL="+dbURL)
	out, err := migrate.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "the outbox moved onto River")

	p := startDev(t, dbURL)
	mailbox := filepath.Join(p.dataDir, "mailbox")
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(mailbox, waiting.String()+".eml"))
		return err == nil
	}, 15*time.Second, 50*time.Millisecond, "the email left waiting is delivered\n%s", p.out.String())
	body, err := os.ReadFile(filepath.Join(mailbox, waiting.String()+".eml"))
	require.NoError(t, err)
	require.Contains(t, string(body), "Left in the outbox")
	_, err = os.Stat(filepath.Join(mailbox, sent.String()+".eml"))
	require.ErrorIs(t, err, os.ErrNotExist, "the email sent before the upgrade is not sent again")
	p.stop(t)
}
