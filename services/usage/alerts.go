package usage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/database"
)

// Usage alerts. A total that passes 80 % or 100 % of its limit raises an alert in the
// statement that counts it: a row whose primary key is (user, meter, period,
// threshold), so that each is raised once however many replicas see the total cross.
// The statement hands back the alerts it raised, and the server inserts a job to send
// each right after; alertSweepArgs picks up any whose job was never inserted (the
// process stopped in between). The notification goes through the notification
// service under an idempotency key of the alert's own, so that a job run twice sends
// once.

// alertKey names one alert.
type alertKey struct {
	UserID      uuid.UUID `json:"user_id"`
	Meter       string    `json:"meter"`
	PeriodStart time.Time `json:"period_start"`
	Threshold   int32     `json:"threshold"`
}

// alertArgs is the job that sends one alert.
type alertArgs struct {
	alertKey
}

// Kind implements river.JobArgs.
func (alertArgs) Kind() string { return "usage_alert" }

// InsertOpts implements river.JobArgsWithInsertOpts: one job per alert, however often
// it is inserted (by the server and by the sweep).
func (alertArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// raise inserts a job for each alert. A failure is logged and left to the sweep: the
// alert itself is stored, and the usage counted.
func (s *Server) raise(ctx context.Context, alerts []alertKey) {
	if len(alerts) == 0 {
		return
	}
	params := make([]river.InsertManyParams, len(alerts))
	for i, a := range alerts {
		params[i] = river.InsertManyParams{Args: alertArgs{a}}
	}
	if _, err := s.jobs.River().InsertMany(context.WithoutCancel(ctx), params); err != nil {
		s.log.WarnContext(ctx, "queue usage alerts: the sweep will send them", "alerts", len(alerts), "error", err.Error())
	}
}

// alertWorker sends alerts.
type alertWorker struct {
	river.WorkerDefaults[alertArgs]
	s *Server
}

// Work implements river.Worker.
func (w *alertWorker) Work(ctx context.Context, job *river.Job[alertArgs]) error {
	return w.s.sendAlert(ctx, job.Args.alertKey)
}

// sendAlert sends one alert and records that it went.
func (s *Server) sendAlert(ctx context.Context, k alertKey) error {
	a, err := s.store.alert(ctx, k)
	if errors.Is(err, database.ErrNotFound) {
		// Forgotten with its period, past the retention.
		return nil
	}
	if err != nil {
		return err
	}
	if a.SentTime != nil {
		return nil
	}
	meter, ok := s.catalog.Meter(a.Meter)
	name := a.Meter
	if ok {
		name = meter.DisplayName
	}
	title := fmt.Sprintf("You have used %d%% of your %s this period", a.Threshold, name)
	if a.Threshold >= 100 {
		title = fmt.Sprintf("You have used all of your %s this period", name)
	}
	body := fmt.Sprintf("%s of %s %s used; the period ends on %s UTC.",
		strconv.FormatInt(a.Total, 10), strconv.FormatInt(a.QuotaLimit, 10), meter.Unit, a.PeriodEnd.UTC().Format("2 January 2006 15:04"))
	_, err = s.notify.Send(ctx, &notificationv1.SendRequest{
		Recipient:      &notificationv1.SendRequest_UserId{UserId: a.UserID.String()},
		Template:       "message",
		Data:           map[string]string{"title": title, "body": body},
		Category:       notificationv1.Category_CATEGORY_USAGE,
		Channels:       []notificationv1.Channel{notificationv1.Channel_CHANNEL_IN_APP, notificationv1.Channel_CHANNEL_EMAIL},
		IdempotencyKey: alertIdempotencyKey(k),
	})
	if err != nil {
		return fmt.Errorf("send usage alert: %w", err)
	}
	return s.store.markAlertSent(ctx, k, s.now())
}

// alertIdempotencyKey names an alert to the notification service: at most 128
// printable characters.
func alertIdempotencyKey(k alertKey) string {
	return fmt.Sprintf("usage-alert:%s:%s:%d:%d", k.UserID, k.Meter, k.PeriodStart.Unix(), k.Threshold)
}

// alertSweepArgs is the periodic job that queues alerts whose job was never inserted.
type alertSweepArgs struct{}

// Kind implements river.JobArgs.
func (alertSweepArgs) Kind() string { return "usage_alert_sweep" }

// How often the sweep runs, and how old an unsent alert must be before the sweep takes
// it for one whose job was lost rather than one being sent.
const (
	alertSweepEvery = time.Minute
	alertSweepAfter = time.Minute
	alertSweepBatch = 1000
)

// alertSweepWorker works alertSweepArgs jobs.
type alertSweepWorker struct {
	river.WorkerDefaults[alertSweepArgs]
	s *Server
}

// Work implements river.Worker.
func (w *alertSweepWorker) Work(ctx context.Context, _ *river.Job[alertSweepArgs]) error {
	_, err := w.s.sweepAlerts(ctx)
	return err
}

// sweepAlerts queues the alerts left unsent, and returns how many.
func (s *Server) sweepAlerts(ctx context.Context) (int, error) {
	rows, err := s.store.unsentAlerts(ctx, s.now().Add(-alertSweepAfter), alertSweepBatch)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	params := make([]river.InsertManyParams, len(rows))
	for i, a := range rows {
		params[i] = river.InsertManyParams{Args: alertArgs{alertKey{UserID: a.UserID, Meter: a.Meter, PeriodStart: a.PeriodStart, Threshold: a.Threshold}}}
	}
	if _, err := s.jobs.River().InsertMany(ctx, params); err != nil {
		return 0, err
	}
	return len(rows), nil
}
