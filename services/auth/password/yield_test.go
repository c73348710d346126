package password

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/services/auth/password/internal/argon2"
)

// fakeYields is a yield policy whose other work is a number the test sets and whose
// clock moves only when a hash sleeps, by exactly the time asked for: held-back time is
// counted, never measured.
type fakeYields struct {
	*yieldPolicy
	other  atomic.Int64
	mu     sync.Mutex
	clock  time.Time
	sleeps []time.Duration
	// onSleep, if set, runs inside each sleep, after the clock has moved.
	onSleep func(n int)
	// oversleep is how much longer than asked each sleep moves the clock.
	oversleep time.Duration
}

func newFakeYields(perCompute int, grace, poll time.Duration) *fakeYields {
	f := &fakeYields{clock: time.Unix(0, 0)}
	f.yieldPolicy = &yieldPolicy{
		perCompute: perCompute, grace: grace, poll: poll,
		otherWork: func() int { return int(f.other.Load()) },
		now: func() time.Time {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.clock
		},
		sleep: func(d time.Duration) {
			f.mu.Lock()
			f.clock = f.clock.Add(d + f.oversleep)
			f.sleeps = append(f.sleeps, d)
			n := len(f.sleeps)
			f.mu.Unlock()
			if f.onSleep != nil {
				f.onSleep(n)
			}
		},
	}
	return f
}

// compute moves the clock by d, as a hash's segment of work would.
func (f *fakeYields) compute(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = f.clock.Add(d)
}

// elapsed is how far the clock has moved since the test began.
func (f *fakeYields) elapsed() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clock.Sub(time.Unix(0, 0))
}

func (f *fakeYields) slept() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// TestYieldPausesWhileOtherWork: a hash does not pause while the process has no other
// work, nor for work seen at one look only; it pauses once work is seen at two looks in
// a row, stays paused while it lasts and goes on as soon as it has drained; while
// paused it does not count as computing.
// Not parallel: it reads the process-wide count of computing hashes.
func TestYieldPausesWhileOtherWork(t *testing.T) {
	f := newFakeYields(0, time.Second, time.Millisecond)
	h := f.start()
	defer h.end()
	computingNow := computing.Load()

	h.yield()
	require.Empty(t, f.slept(), "no other work: no pause")

	var whilePaused []int64
	f.onSleep = func(n int) {
		whilePaused = append(whilePaused, computing.Load())
		if n == 3 {
			f.other.Store(0) // the other work drains during the third pause
		}
	}
	f.other.Store(2)
	h.yield()
	require.Empty(t, f.slept(), "other work at one look only: no pause yet")
	f.other.Store(0)
	h.yield()
	f.other.Store(2)
	h.yield()
	require.Empty(t, f.slept(), "gone at the next look, and back: still one look")
	h.yield()
	require.Equal(t, []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}, f.slept(),
		"paused until the other work drained, and no longer")
	require.Equal(t, 3, h.pauses)
	require.Equal(t, 3*time.Millisecond, h.held)
	require.Equal(t, []int64{computingNow - 1, computingNow - 1, computingNow - 1}, whilePaused,
		"a paused hash is not counted as computing")
	require.Equal(t, computingNow, computing.Load(), "computing again once it goes on")

	h.yield()
	require.Len(t, f.slept(), 3, "nothing to step aside for: no pause")
}

// TestHoldBackBeforeComputing: with other work that never drains and no time computed
// yet, a hash is held back for its grace in all, the last pause cut short to fit, and
// pauses no more until it has computed.
func TestHoldBackBeforeComputing(t *testing.T) {
	t.Parallel()
	const grace, poll = 10 * time.Millisecond, 3 * time.Millisecond
	f := newFakeYields(1, grace, poll)
	f.other.Store(1)
	h := f.start()
	for range 1000 {
		h.yield()
	}
	h.end()
	require.Equal(t, []time.Duration{poll, poll, poll, grace - 3*poll}, f.slept())
	require.Equal(t, grace, h.held)
}

// TestHoldBackFollowsCompute is the starvation bound: with other work that never
// drains, a hash is held back, throughout, exactly as much as its allowance lets it
// (perCompute times what it has computed, plus the grace): it keeps stepping aside to
// its end instead of running free once an allowance is spent, and its whole time is
// bounded by (1+perCompute) times its computing plus the grace.
func TestHoldBackFollowsCompute(t *testing.T) {
	t.Parallel()
	const grace, poll, segment = 2 * time.Millisecond, 250 * time.Microsecond, 300 * time.Microsecond
	for _, perCompute := range []int{1, 3} {
		f := newFakeYields(perCompute, grace, poll)
		f.other.Store(1)
		h := f.start()
		const segments = 400
		pausedLate := 0
		for i := range segments {
			f.compute(segment)
			before := h.pauses
			h.yield()
			if i >= segments-10 && h.pauses > before {
				pausedLate++
			}
			allowance := grace + time.Duration(perCompute)*time.Duration(i+1)*segment
			if i == 0 {
				require.Zero(t, h.held, "work seen at one look only")
				continue
			}
			require.Equal(t, allowance, h.held, "held back as much as the allowance lets it, and no more")
		}
		h.end()
		computed := segments * segment
		require.Equal(t, computed, h.computed)
		require.Positive(t, pausedLate, "still stepping aside at its end")
		require.LessOrEqual(t, f.elapsed(), time.Duration(1+perCompute)*computed+grace,
			"the starvation bound")
	}
}

// TestOversleepsDoNotAddUp: when every pause sleeps longer than asked (a busy machine's
// timers), a hash is over its allowance by at most one oversleep at any time, so the
// starvation bound holds with one oversleep added, however many pauses there were.
func TestOversleepsDoNotAddUp(t *testing.T) {
	t.Parallel()
	const grace, poll, segment, oversleep = 2 * time.Millisecond, time.Millisecond, 300 * time.Microsecond, 700 * time.Microsecond
	f := newFakeYields(1, grace, poll)
	f.oversleep = oversleep
	f.other.Store(1)
	h := f.start()
	const segments = 400
	for range segments {
		f.compute(segment)
		h.yield()
		require.LessOrEqual(t, h.held, h.allowance()+oversleep)
	}
	h.end()
	require.Greater(t, len(f.slept()), segments/4, "it kept stepping aside")
	require.LessOrEqual(t, f.elapsed(), 2*segments*segment+grace+oversleep, "the starvation bound")
}

// TestHoldBackStopsWhenWorkDrains: a hash with allowance left goes on computing once the
// other work has gone, and its allowance is not spent on nothing.
func TestHoldBackStopsWhenWorkDrains(t *testing.T) {
	t.Parallel()
	f := newFakeYields(1, 0, time.Millisecond)
	h := f.start()
	for range 100 {
		f.compute(time.Millisecond)
		h.yield()
	}
	require.Empty(t, f.slept())
	require.Equal(t, 100*time.Millisecond, h.computed)
	f.other.Store(1)
	f.onSleep = func(n int) {
		if n == 2 {
			f.other.Store(0)
		}
	}
	h.yield()
	h.yield()
	h.end()
	require.Equal(t, []time.Duration{time.Millisecond, time.Millisecond}, f.slept(),
		"100 ms of allowance, 2 ms used: the work had drained")
}

// TestHashCompletesDespiteBusyProcess runs a real hash through a pool whose process
// never stops being busy and whose clock moves only while it pauses, so that the hash
// computes in no time: it is held back exactly its grace, completes, and its key is the
// one computed without yielding.
func TestHashCompletesDespiteBusyProcess(t *testing.T) {
	t.Parallel()
	const grace, poll = 5 * time.Millisecond, time.Millisecond
	f := newFakeYields(1, grace, poll)
	f.other.Store(1)
	var held []time.Duration
	var mu sync.Mutex
	f.heldBack = func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		held = append(held, d)
	}
	p := newPool(1, f.yieldPolicy)

	pw, salt := []byte("password"), []byte("saltsaltsaltsalt")
	var key []byte
	// 16 passes over 64 KiB: 1022 blocks filled, 7 yields, more than the 5 pauses the
	// grace allows.
	require.NoError(t, p.do(t.Context(), func(yield func(), _ *argon2.Memory) {
		key = argon2.IDKeyYielding(pw, salt, 16, 64, 1, 32, yield)
	}))
	require.Equal(t, argon2.IDKey(pw, salt, 16, 64, 1, 32), key)
	require.Len(t, f.slept(), 5)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []time.Duration{grace}, held)
}

// TestPausedHashResumesWhenWorkDrains holds a hash, from the pool's worker, in a pause
// for as long as the test keeps other work up, and sees it finish once the work is gone,
// well inside its allowance.
func TestPausedHashResumesWhenWorkDrains(t *testing.T) {
	t.Parallel()
	f := newFakeYields(0, time.Hour, time.Millisecond)
	f.other.Store(1)
	paused := make(chan struct{})
	resume := make(chan struct{})
	f.onSleep = func(n int) {
		if n == 1 {
			close(paused)
		}
		<-resume
	}
	p := newPool(1, f.yieldPolicy)

	done := make(chan error, 1)
	go func() {
		done <- p.do(t.Context(), func(yield func(), _ *argon2.Memory) {
			argon2.IDKeyYielding([]byte("password"), []byte("saltsaltsaltsalt"), 1, 1024, 1, 32, yield)
		})
	}()
	<-paused
	select {
	case err := <-done:
		t.Fatalf("the hash finished while paused: %v", err)
	default:
	}
	f.other.Store(0)
	close(resume)
	require.NoError(t, <-done)
	require.Len(t, f.slept(), 1, "one pause: the work had drained when it ended")
}

// TestOtherGoroutinesSeesBusyWork: from inside a hash's account, the runtime's counts
// show goroutines spinning beside it as other work, and none once they stop (the hash
// itself never counts).
// Not parallel: other tests' goroutines would be other work too.
func TestOtherGoroutinesSeesBusyWork(t *testing.T) {
	require.True(t, goroutineStatesSupported())
	h := newYieldPolicy().start()
	defer h.end()

	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range 2 {
		busy.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		})
	}
	// Polled from this goroutine, the hash's own (require.Eventually would ask from one
	// of its own, which is other work).
	seen := func(want func(n int) bool) bool {
		for deadline := time.Now().Add(testWait); time.Now().Before(deadline); time.Sleep(testTick) {
			if want(otherGoroutines()) {
				return true
			}
		}
		return false
	}
	require.True(t, seen(func(n int) bool { return n > 0 }), "busy goroutines are other work")
	close(stop)
	busy.Wait()
	require.True(t, seen(func(n int) bool { return n <= 0 }), "with them gone, the hash alone is left")
}

// TestHashBesideBusyLoops is the faults suite's busy machine at its worst for hashing:
// eight goroutines of the same process spinning for as long as the hash runs, so that
// there is always other work to step aside for. The hash steps aside, then, its
// allowance spent, completes with the key computed without yielding.
func TestHashBesideBusyLoops(t *testing.T) {
	t.Parallel()
	y := newYieldPolicy()
	var held atomic.Int64
	y.heldBack = func(d time.Duration) { held.Store(int64(d)) }
	p := newPool(1, y)

	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range 8 {
		busy.Go(func() {
			for n := 0; ; n++ {
				if n%1024 == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
			}
		})
	}
	defer busy.Wait()
	defer close(stop)

	pw, salt := []byte("password"), []byte("saltsaltsaltsalt")
	var key []byte
	require.NoError(t, p.do(t.Context(), func(yield func(), _ *argon2.Memory) {
		key = argon2.IDKeyYielding(pw, salt, 4, 1024, 1, 32, yield)
	}))
	require.Equal(t, argon2.IDKey(pw, salt, 4, 1024, 1, 32), key)
	require.Positive(t, held.Load(), "the hash stepped aside for the busy loops")
}
