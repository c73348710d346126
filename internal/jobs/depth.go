package jobs

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// DefaultDepthInterval is how often a working client reads how many jobs wait in its
// queues: often enough for an alert on minutes, and two indexed queries per queue cost
// the database nothing at that rate.
const DefaultDepthInterval = 15 * time.Second

// queueDepth is what one read found in one queue.
type queueDepth struct {
	// waiting are the jobs available to work and not taken: new ones, and scheduled
	// jobs and retries whose time has come (River's leader moves them to available).
	waiting int64
	running int64
	// retrying are the jobs that failed and wait out their backoff before the next try.
	retrying int64
	// oldest is when the longest-waiting available job became due; zero when none waits.
	oldest time.Time
}

// depthGauges publishes the depth of a working client's queues as gauges:
// backplane.jobs.waiting, backplane.jobs.running, backplane.jobs.retrying and
// backplane.jobs.oldest_waiting_age, each with a queue attribute. The database is read
// on a timer by the client, never in a scrape: a slow database must not slow /metrics,
// and five scrapers must not mean five reads.
type depthGauges struct {
	mu     sync.Mutex
	queues map[string]queueDepth
	now    func() time.Time

	waiting, running, retrying metric.Int64ObservableGauge
	oldestAge                  metric.Float64ObservableGauge
	meter                      metric.Meter
	registration               metric.Registration
}

func newDepthGauges(mp metric.MeterProvider) (*depthGauges, error) {
	d := &depthGauges{meter: mp.Meter("github.com/backplane/backplane/internal/jobs"), now: time.Now}
	var err error
	if d.waiting, err = d.meter.Int64ObservableGauge("backplane.jobs.waiting",
		metric.WithDescription("Jobs available to work that no worker has taken yet, by queue."),
		metric.WithUnit("{job}")); err != nil {
		return nil, err
	}
	if d.running, err = d.meter.Int64ObservableGauge("backplane.jobs.running",
		metric.WithDescription("Jobs being worked, by queue, by every replica."),
		metric.WithUnit("{job}")); err != nil {
		return nil, err
	}
	if d.retrying, err = d.meter.Int64ObservableGauge("backplane.jobs.retrying",
		metric.WithDescription("Jobs that failed and wait out their backoff before the next try, by queue."),
		metric.WithUnit("{job}")); err != nil {
		return nil, err
	}
	if d.oldestAge, err = d.meter.Float64ObservableGauge("backplane.jobs.oldest_waiting_age",
		metric.WithDescription("How long the longest-waiting available job of a queue has waited since it became due; 0 when none waits."),
		metric.WithUnit("s")); err != nil {
		return nil, err
	}
	return d, nil
}

// start begins reporting; stop ends it, so that a stopped client reports nothing.
func (d *depthGauges) start() error {
	reg, err := d.meter.RegisterCallback(d.observe, d.waiting, d.running, d.retrying, d.oldestAge)
	if err != nil {
		return err
	}
	d.registration = reg
	return nil
}

func (d *depthGauges) stop() {
	if d.registration != nil {
		_ = d.registration.Unregister()
		d.registration = nil
	}
}

func (d *depthGauges) observe(_ context.Context, o metric.Observer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for queue, q := range d.queues {
		attrs := metric.WithAttributes(attribute.String("queue", queue))
		o.ObserveInt64(d.waiting, q.waiting, attrs)
		o.ObserveInt64(d.running, q.running, attrs)
		o.ObserveInt64(d.retrying, q.retrying, attrs)
		age := 0.0
		if !q.oldest.IsZero() {
			age = max(0, now.Sub(q.oldest).Seconds())
		}
		o.ObserveFloat64(d.oldestAge, age, attrs)
	}
	return nil
}

func (d *depthGauges) set(queues map[string]queueDepth) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queues = queues
}

// readDepth reads the depth of the client's queues through River's own queries: one
// count of every queue's available and running jobs, and per queue its oldest
// available job, both on River's index for fetching; and one count of the retrying
// jobs of every queue, which River has no query for, on the same index.
func (c *Client) readDepth(ctx context.Context) (map[string]queueDepth, error) {
	counts, err := c.river.Driver().GetExecutor().JobCountByQueueAndState(ctx, &riverdriver.JobCountByQueueAndStateParams{
		QueueNames: c.queues, Schema: c.schema,
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]queueDepth, len(c.queues))
	for _, q := range c.queues {
		out[q] = queueDepth{}
	}
	for _, row := range counts {
		out[row.Queue] = queueDepth{waiting: row.CountAvailable, running: row.CountRunning}
	}
	retrying, err := c.countRetrying(ctx)
	if err != nil {
		return nil, err
	}
	for queue, n := range retrying {
		if q, ok := out[queue]; ok {
			q.retrying = n
			out[queue] = q
		}
	}
	for queue, q := range out {
		if q.waiting == 0 {
			continue
		}
		res, err := c.river.JobList(ctx, river.NewJobListParams().Queues(queue).States(rivertype.JobStateAvailable).
			OrderBy(river.JobListOrderByScheduledAt, river.SortOrderAsc).First(1))
		if err != nil {
			return nil, err
		}
		if len(res.Jobs) > 0 {
			q.oldest = res.Jobs[0].ScheduledAt
			out[queue] = q
		}
	}
	return out, nil
}

// countRetrying counts the retryable jobs of each of the client's queues that has any.
func (c *Client) countRetrying(ctx context.Context) (map[string]int64, error) {
	rows, err := c.pool.Query(ctx, `SELECT queue, count(*) FROM `+pgx.Identifier{c.schema, "river_job"}.Sanitize()+`
		WHERE state = 'retryable' AND queue = ANY($1) GROUP BY queue`, c.queues)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var queue string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&queue, &n}, func() error {
		out[queue] = n
		return nil
	})
	return out, err
}

// refreshDepth reads the depth of the client's queues now, for the gauges.
func (c *Client) refreshDepth(ctx context.Context) error {
	queues, err := c.readDepth(ctx)
	if err != nil {
		return err
	}
	c.depth.set(queues)
	return nil
}

// watchDepth refreshes the depth gauges every interval until ctx ends. A failed read
// keeps the last values: the database being away is alerted on elsewhere.
func (c *Client) watchDepth(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, interval)
		if err := c.refreshDepth(rctx); err != nil && ctx.Err() == nil {
			c.log.WarnContext(ctx, "could not read the depth of the job queues", "error", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
