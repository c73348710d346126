package notification

import (
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/internal/service"
)

// migrationsBeforeRiver are the migrations of the last release with the outbox table.
func migrationsBeforeRiver(t *testing.T) fs.FS {
	t.Helper()
	old := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations(), ".")
	require.NoError(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "0001_") {
			body, err := fs.ReadFile(migrations(), e.Name())
			require.NoError(t, err)
			old[e.Name()] = &fstest.MapFile{Data: body}
		}
	}
	require.Len(t, old, 2)
	return old
}

// outboxRow is a notification and its outbox row as the release before River left them.
type outboxRow struct {
	channel, status string
	attempts        int
	nextAttemptIn   time.Duration
	leasedFor       time.Duration // a worker of the old release is sending it
}

func seedOutbox(t *testing.T, pool *pgxpool.Pool, row outboxRow) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	id := uuid.New()
	recipient := "email"
	if row.channel == channelInApp {
		recipient = "user_id"
	}
	var addr any = id.String() + "@example.test"
	if recipient == "user_id" {
		addr = uuid.New()
	}
	_, err := pool.Exec(ctx, `INSERT INTO notification (id, idempotency_key, `+recipient+`, category, template, title, body_text, body_html, channels, in_inbox)
		VALUES ($1, $2, $3, 'account', 'message', 'Before River', 'text', '<p>html</p>', ARRAY[$4], $5)`,
		id, "key:"+id.String(), addr, row.channel, row.channel == channelInApp)
	require.NoError(t, err)
	var leaseUntil *time.Time
	if row.leasedFor > 0 {
		until := time.Now().Add(row.leasedFor)
		leaseUntil = &until
	}
	_, err = pool.Exec(ctx, `INSERT INTO outbox (notification_id, channel, status, attempts, next_attempt_at, lease_until, lease_token, provider_id)
		VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond', $6, CASE WHEN $6::timestamptz IS NULL THEN NULL ELSE gen_random_uuid() END, $7)`,
		id, row.channel, row.status, row.attempts, row.nextAttemptIn.Milliseconds(), leaseUntil, map[bool]string{true: "sg-1"}[row.status == statusSent])
	require.NoError(t, err)
	return id
}

// An upgrade from the release before River loses no email and sends none twice: the
// emails its outbox held unsent become jobs, due when they were, with the attempts
// already made counted; what was sent stays sent; the outbox table is dropped.
func TestUpgradeTurnsTheUnsentOutboxIntoJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t, serviceName, migrationsBeforeRiver(t))
	due := seedOutbox(t, pool, outboxRow{channel: channelEmail, status: statusPending, attempts: 2, nextAttemptIn: -time.Second})
	inFlight := seedOutbox(t, pool, outboxRow{channel: channelEmail, status: statusPending, attempts: 1, leasedFor: 3 * time.Second})
	later := seedOutbox(t, pool, outboxRow{channel: channelEmail, status: statusPending, attempts: 3, nextAttemptIn: time.Hour})
	sent := seedOutbox(t, pool, outboxRow{channel: channelEmail, status: statusSent, attempts: 1})
	inApp := seedOutbox(t, pool, outboxRow{channel: channelInApp, status: statusDelivered})
	upgradedAt := time.Now()

	scenario.Step(t, "migrate as backplane migrate does", func(t *testing.T) {
		_, err := database.Migrate(ctx, pool, serviceName, migrations())
		require.NoError(t, err)
		_, err = jobs.Migrate(ctx, pool, serviceName, nil)
		require.NoError(t, err)
		require.NoError(t, Definition().Upgrade(ctx, pool, slog.New(slog.DiscardHandler)))
	})

	inserter, err := newInserter(pool, service.Deps{})
	require.NoError(t, err)
	emailJobs := func(t *testing.T) map[uuid.UUID]*rivertype.JobRow {
		t.Helper()
		list, err := inserter.River().JobList(ctx, river.NewJobListParams().Kinds(emailArgs{}.Kind()).First(100))
		require.NoError(t, err)
		out := map[uuid.UUID]*rivertype.JobRow{}
		for _, j := range list.Jobs {
			var args emailArgs
			require.NoError(t, json.Unmarshal(j.EncodedArgs, &args))
			out[args.NotificationID] = j
		}
		return out
	}

	scenario.Step(t, "each unsent email is a job, due when it was", func(t *testing.T) {
		var outbox bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass('outbox') IS NOT NULL").Scan(&outbox))
		require.False(t, outbox, "the outbox table is dropped")

		got := emailJobs(t)
		require.Len(t, got, 3)
		for id, prior := range map[uuid.UUID]int{due: 2, inFlight: 1, later: 3} {
			var args emailArgs
			require.NoError(t, json.Unmarshal(got[id].EncodedArgs, &args))
			require.Equal(t, prior, args.PriorAttempts)
		}
		require.WithinDuration(t, upgradedAt.Add(-time.Second), got[due].ScheduledAt, 2*time.Second)
		require.WithinDuration(t, upgradedAt.Add(3*time.Second), got[inFlight].ScheduledAt, 2*time.Second, "due when the old worker's lease ends")
		require.WithinDuration(t, upgradedAt.Add(time.Hour), got[later].ScheduledAt, 2*time.Second)
	})

	scenario.Step(t, "every outbox row is a delivery row", func(t *testing.T) {
		st := newStore(pool, nil)
		rows, err := st.deliveries(ctx, []uuid.UUID{due, inFlight, later, sent, inApp})
		require.NoError(t, err)
		require.Len(t, rows, 5)
		require.Equal(t, statusSent, rows[sent][0].Status)
		require.Equal(t, "sg-1", rows[sent][0].ProviderID)
		require.Equal(t, statusDelivered, rows[inApp][0].Status)
		require.Equal(t, statusPending, rows[due][0].Status)
		require.EqualValues(t, 2, rows[due][0].Attempts)
	})

	scenario.Step(t, "a second run finds nothing to do", func(t *testing.T) {
		require.NoError(t, Definition().Upgrade(ctx, pool, slog.New(slog.DiscardHandler)))
		require.Len(t, emailJobs(t), 3)
	})

	sg := newFakeSendgrid(t)
	cfg := testConfig(sg)
	deps := service.Deps{Logger: slog.New(slog.DiscardHandler), DB: pool, Redis: redistest.Client(t), PublicURL: testPublicURL, DataDir: t.TempDir()}
	b := &bundle{server: newTestServer(t, deps, cfg), pool: pool, sendgrid: sg, deps: deps, cfg: cfg}

	scenario.Step(t, "workers send each unsent email once", func(t *testing.T) {
		startWorkers(t, b.server, 2)

		v := b.waitForStatus(t, due, statusSent)
		require.Equal(t, 3, v.Attempts, "the attempts of the outbox count")
		v = b.waitForStatus(t, inFlight, statusSent)
		require.Equal(t, 2, v.Attempts)
		require.False(t, b.sendgrid.sentFor(inFlight)[0].At.Before(upgradedAt.Add(3*time.Second-200*time.Millisecond)),
			"not before the old worker's lease ends")
		time.Sleep(200 * time.Millisecond)
		for _, id := range []uuid.UUID{due, inFlight} {
			require.Len(t, b.sendgrid.sentFor(id), 1)
		}
		require.Empty(t, b.sendgrid.sentFor(sent), "sent before the upgrade: not again")
		require.Empty(t, b.sendgrid.sentFor(later), "not due yet")
		require.Equal(t, statusPending, b.email(t, later).Status)
	})

	scenario.Step(t, "a repeated Send of an upgraded notification inserts no job", func(t *testing.T) {
		_, err := b.server.Send(ctx, &notificationv1.SendRequest{
			Recipient: &notificationv1.SendRequest_Email{Email: later.String() + "@example.test"},
			Template:  "message", Data: map[string]string{"title": "t", "body": "b"},
			Category: notificationv1.Category_CATEGORY_ACCOUNT, Channels: []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL},
			IdempotencyKey: "key:" + later.String(),
		})
		require.NoError(t, err)
		require.Len(t, emailJobs(t), 3)
	})
}
