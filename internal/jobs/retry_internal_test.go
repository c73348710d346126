package jobs

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
)

func TestBackoffDoublesUpToMaxWithJitter(t *testing.T) {
	t.Parallel()
	b := Backoff{First: time.Second, Max: 8 * time.Second, Jitter: 0.25}
	for failure, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 30: 8 * time.Second} {
		require.Equal(t, want, b.delay(failure, 0.5), "failure %d, no jitter", failure)
	}
	require.Equal(t, 750*time.Millisecond, b.delay(1, 0), "shortest")
	require.Equal(t, 1250*time.Millisecond, b.delay(1, 1), "longest")
	for range 100 {
		d := b.Delay(1)
		require.GreaterOrEqual(t, d, 750*time.Millisecond)
		require.LessOrEqual(t, d, 1250*time.Millisecond)
	}
}

func TestBackoffValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, DefaultBackoff().validate())
	for _, b := range []Backoff{
		{First: 0, Max: time.Second},
		{First: time.Second, Max: time.Millisecond},
		{First: time.Second, Max: time.Second, Jitter: 1},
		{First: time.Second, Max: time.Second, Jitter: -0.1},
	} {
		require.Error(t, b.validate(), "%+v", b)
	}
}

func TestRetryPolicyHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newRetryPolicy(Backoff{First: time.Second, Max: time.Minute}, slog.New(slog.DiscardHandler))
	p.now = func() time.Time { return now }
	job := &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 5}
	later := &rivertype.JobRow{ID: 1, Attempt: 2, MaxAttempts: 5, Errors: []rivertype.AttemptError{{}}}

	t.Run("plain error: the backoff", func(t *testing.T) {
		p.HandleError(t.Context(), job, errors.New("boom"))
		require.Equal(t, now.Add(time.Second), p.NextRetry(job))
		require.Equal(t, now.Add(2*time.Second), p.NextRetry(later))
	})
	t.Run("a longer wait asked for wins, once", func(t *testing.T) {
		err := RetryAfter(errors.New("rate limited"), 90*time.Second)
		require.EqualError(t, err, "rate limited")
		p.HandleError(t.Context(), job, err)
		require.Equal(t, now.Add(90*time.Second), p.NextRetry(job))
		require.Equal(t, now.Add(time.Second), p.NextRetry(job), "used up by the retry it delayed")
	})
	t.Run("a shorter wait asked for loses to the backoff", func(t *testing.T) {
		p.HandleError(t.Context(), later, RetryAfter(errors.New("rate limited"), time.Millisecond))
		require.Equal(t, now.Add(2*time.Second), p.NextRetry(later))
	})
	t.Run("the last attempt leaves nothing behind", func(t *testing.T) {
		last := &rivertype.JobRow{ID: 2, Attempt: 5, MaxAttempts: 5}
		p.HandleError(t.Context(), last, RetryAfter(errors.New("rate limited"), time.Hour))
		require.Empty(t, p.earliest)
	})
	t.Run("stale entries are dropped when too many pile up", func(t *testing.T) {
		for id := range int64(earliestLimit) {
			p.earliest[1000+id] = now.Add(-time.Second)
		}
		p.HandleError(t.Context(), job, RetryAfter(errors.New("rate limited"), time.Minute))
		require.Len(t, p.earliest, 1)
	})
}

func TestRetryAfterNilError(t *testing.T) {
	t.Parallel()
	err := RetryAfter(nil, time.Second)
	require.EqualError(t, err, "retry requested")
}
