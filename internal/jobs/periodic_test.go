package jobs_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/jobs"
)

// tickArgs is a periodic job.
type tickArgs struct{}

func (tickArgs) Kind() string { return "orders_tick" }

// Two replicas of a service, each with its own pool and client and the same periodic
// job, share the service's River schema: one is elected leader and inserts the job once
// per period, so it runs once per period, not once per replica.
func TestAPeriodicJobRunsOncePerPeriodAtTwoReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const period = time.Second
	replica := func() *jobs.Client {
		workers := river.NewWorkers()
		river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[tickArgs]) error { return nil }))
		return startClient(t, b.openPool(t), jobs.Config{
			Workers: workers,
			PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(period),
				func() (river.JobArgs, *river.InsertOpts) { return tickArgs{}, nil }, nil)},
		})
	}
	a, _ := replica(), replica()

	// Four periods and more of jobs run to completion.
	require.Eventually(t, func() bool {
		completed, err := a.River().JobList(t.Context(), river.NewJobListParams().Kinds(tickArgs{}.Kind()).
			States(rivertype.JobStateCompleted))
		return err == nil && len(completed.Jobs) >= 4
	}, 20*time.Second, 50*time.Millisecond)

	var leaders int
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT count(*) FROM orders_river.river_leader").Scan(&leaders))
	require.Equal(t, 1, leaders)

	list, err := a.River().JobList(t.Context(), river.NewJobListParams().Kinds(tickArgs{}.Kind()).First(100))
	require.NoError(t, err)
	created := make([]time.Time, 0, len(list.Jobs))
	for _, job := range list.Jobs {
		require.LessOrEqual(t, job.Attempt, 1, "each inserted job runs once")
		created = append(created, job.CreatedAt)
	}
	slices.SortFunc(created, func(x, y time.Time) int { return x.Compare(y) })
	require.GreaterOrEqual(t, len(created), 4)
	for i := 1; i < len(created); i++ {
		// Two leaders would each insert the job every period, a few milliseconds apart.
		require.Greater(t, created[i].Sub(created[i-1]), period/2, "jobs %d and %d were inserted in one period", i-1, i)
	}
}
