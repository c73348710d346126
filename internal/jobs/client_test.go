package jobs_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/jobs"
)

// placeOrder inserts an order and the job shipping it in one transaction of the service's
// own pool, and commits or rolls back.
func placeOrder(t *testing.T, b *testBundle, client *jobs.Client, id int64, commit bool) *rivertype.JobInsertResult {
	t.Helper()
	ctx := t.Context()
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// Unqualified: the pool's search_path is the service's schema.
	_, err = tx.Exec(ctx, "INSERT INTO orders (id, item) VALUES ($1, 'kettle')", id)
	require.NoError(t, err)
	res, err := client.InsertTx(ctx, tx, shipArgs{OrderID: id}, nil)
	require.NoError(t, err)
	if commit {
		require.NoError(t, tx.Commit(ctx))
	}
	return res
}

func TestInsertTxFollowsTheTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var searchPath string
	require.NoError(t, b.pool.QueryRow(t.Context(), "SHOW search_path").Scan(&searchPath))
	require.Equal(t, `"orders", public`, searchPath, "the service's pool, as services get it")

	var mu sync.Mutex
	worked := map[int64]int{}
	client := startClient(t, b.pool, jobs.Config{Workers: workFunc(func(ctx context.Context, job *river.Job[shipArgs]) error {
		// The change that caused the job is there when it runs.
		var item string
		if err := b.pool.QueryRow(ctx, "SELECT item FROM orders WHERE id = $1", job.Args.OrderID).Scan(&item); err != nil {
			return err
		}
		mu.Lock()
		worked[job.Args.OrderID]++
		mu.Unlock()
		return nil
	})})

	t.Run("rolled back: no job", func(t *testing.T) {
		res := placeOrder(t, b, client, 1, false)
		_, err := client.River().JobGet(t.Context(), res.Job.ID)
		require.ErrorIs(t, err, river.ErrNotFound)
	})

	t.Run("committed: the job runs once", func(t *testing.T) {
		res := placeOrder(t, b, client, 2, true)
		job := waitForState(t, client, res.Job.ID, rivertype.JobStateCompleted)
		require.Equal(t, 1, job.Attempt)
	})

	t.Run("nothing else ran", func(t *testing.T) {
		// Long enough for a second fetch of a job run twice, or of the rolled back one.
		time.Sleep(1500 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, map[int64]int{2: 1}, worked)
		jobsLeft, err := client.River().JobList(t.Context(), river.NewJobListParams().States(
			rivertype.JobStateAvailable, rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled))
		require.NoError(t, err)
		require.Empty(t, jobsLeft.Jobs)
	})
}

func TestUniqueJobsAreInsertedOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var runs atomic.Int64
	client := newClient(t, b.pool, jobs.Config{Workers: counter(&runs)})
	unique := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}

	first, err := client.Insert(t.Context(), shipArgs{OrderID: 7}, unique)
	require.NoError(t, err)
	require.False(t, first.UniqueSkippedAsDuplicate)
	second, err := client.Insert(t.Context(), shipArgs{OrderID: 7}, unique)
	require.NoError(t, err)
	require.True(t, second.UniqueSkippedAsDuplicate)
	require.Equal(t, first.Job.ID, second.Job.ID)
	other, err := client.Insert(t.Context(), shipArgs{OrderID: 8}, unique)
	require.NoError(t, err)
	require.False(t, other.UniqueSkippedAsDuplicate, "other arguments, another job")

	require.NoError(t, client.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, client.Stop(context.Background())) })
	waitForState(t, client, first.Job.ID, rivertype.JobStateCompleted)
	waitForState(t, client, other.Job.ID, rivertype.JobStateCompleted)
	require.Equal(t, int64(2), runs.Load())
}

// A failed job is retried about a second later, as DefaultBackoff promises (0.75 to 1.25
// s, plus up to one PollInterval before the client notices the job is due), and about two
// seconds after its second failure.
func TestAFailedJobIsRetriedAboutOneSecondLater(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var (
		mu       sync.Mutex
		attempts []time.Time // when each attempt ended
	)
	client := startClient(t, b.pool, jobs.Config{
		PollInterval: 200 * time.Millisecond,
		Workers: workFunc(func(context.Context, *river.Job[shipArgs]) error {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, time.Now())
			if len(attempts) < 3 {
				return errors.New("the carrier is down")
			}
			return nil
		}),
	})
	res, err := client.Insert(t.Context(), shipArgs{OrderID: 1}, nil)
	require.NoError(t, err)
	job := waitForState(t, client, res.Job.ID, rivertype.JobStateCompleted)

	require.Equal(t, 3, job.Attempt)
	require.Len(t, job.Errors, 2)
	require.Equal(t, "the carrier is down", job.Errors[0].Error)
	mu.Lock()
	defer mu.Unlock()
	first, second := attempts[1].Sub(attempts[0]), attempts[2].Sub(attempts[1])
	require.GreaterOrEqual(t, first, 750*time.Millisecond)
	require.Less(t, first, 2500*time.Millisecond)
	require.GreaterOrEqual(t, second, 1500*time.Millisecond)
	require.Less(t, second, 3500*time.Millisecond)
}

// A worker's RetryAfter wins over a shorter backoff; the failure still counts.
func TestRetryAfterDelaysTheRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	client := startClient(t, b.pool, jobs.Config{
		Workers: workFunc(func(context.Context, *river.Job[shipArgs]) error {
			return jobs.RetryAfter(errors.New("rate limited"), 3*time.Second)
		}),
	})
	res, err := client.Insert(t.Context(), shipArgs{OrderID: 1}, nil)
	require.NoError(t, err)

	var job *rivertype.JobRow
	require.Eventually(t, func() bool {
		got, err := client.River().JobGet(t.Context(), res.Job.ID)
		if err != nil || len(got.Errors) == 0 {
			return false
		}
		job = got
		return true
	}, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, job.Attempt)
	require.Equal(t, "rate limited", job.Errors[0].Error)
	wait := job.ScheduledAt.Sub(*job.AttemptedAt)
	require.GreaterOrEqual(t, wait, 3*time.Second, "the retry waits as long as the worker asked")
	require.Less(t, wait, 4*time.Second, "and no longer")
}

// Stop lets a running job finish within its budget, and past it cancels the job, which
// goes back to the queue without spending an attempt.
func TestStopCancelsJobsPastTheBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan struct{}, 1)
	client := newClient(t, b.pool, jobs.Config{Workers: workFunc(func(ctx context.Context, _ *river.Job[shipArgs]) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})})
	require.NoError(t, client.Start(t.Context()))
	res, err := client.Insert(t.Context(), shipArgs{OrderID: 1}, nil)
	require.NoError(t, err)
	<-started

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	require.NoError(t, client.Stop(ctx))
	require.Less(t, time.Since(begin), 2*time.Second)

	job, err := client.River().JobGet(t.Context(), res.Job.ID)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateAvailable, job.State)
	require.Zero(t, job.Attempt, "the cancelled attempt is given back")
}

func TestNewRefusesAnIncompleteConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var runs atomic.Int64
	for name, cfg := range map[string]jobs.Config{
		"no workers":   {Service: service},
		"no service":   {Workers: counter(&runs)},
		"bad backoff":  {Service: service, Workers: counter(&runs), Retry: jobs.Backoff{First: time.Second, Max: time.Millisecond}},
		"negative":     {Service: service, Workers: counter(&runs), JobTimeout: -time.Second},
		"rescue early": {Service: service, Workers: counter(&runs), JobTimeout: time.Hour, RescueAfter: time.Minute},
	} {
		_, err := jobs.New(b.pool, cfg)
		require.Error(t, err, name)
	}
}

// A poll interval below River's fetch cooldown (100 ms), which River refuses on its own,
// is taken: the cooldown shrinks with it.
func TestAPollIntervalBelowRiversCooldownIsTaken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var runs atomic.Int64
	client := startClient(t, b.pool, jobs.Config{PollInterval: 20 * time.Millisecond, Workers: counter(&runs)})
	res, err := client.Insert(t.Context(), shipArgs{OrderID: 1}, nil)
	require.NoError(t, err)
	waitForState(t, client, res.Job.ID, rivertype.JobStateCompleted)
	require.Equal(t, int64(1), runs.Load())
}
