package password

import (
	"runtime/metrics"
	"slices"
	"sync/atomic"
	"time"
)

const (
	// holdBackPerCompute is how long a hash may be held back, in all, for each unit of
	// time it has spent computing so far (see yieldPolicy): with 1, a hash keeps at least
	// half of the time since it started for its own work, however busy the process.
	holdBackPerCompute = 1
	// holdBackGrace is the hold-back a hash may use before it has computed anything, so
	// that its first segments step aside too.
	holdBackGrace = 2 * time.Millisecond
	// yieldPoll is how long a held-back hash sleeps before it looks again whether the
	// process's other work has drained. Each wake passes the hash's goroutine through the
	// scheduler again (a timer, a P, often a thread woken), and since the allowance
	// renews, a hash under steady load pauses throughout: at 0.25 ms these wakes cost the
	// API's p99 more during a flood than the shorter pauses saved (measured with the
	// auth benchmarks on a loaded machine), at 1 ms they do not. Go's timers sleep about
	// a millisecond at least anyway when the process has nothing else to do.
	yieldPoll = time.Millisecond
)

// computing counts the hashes computing now, in the whole process, so that they are
// told apart from the work they step aside for. It is process-wide because the runtime's
// goroutine counts are: a process with several hashers (tests build dozens) must not
// take one hasher's hashes for another's other work.
var computing atomic.Int64

// yieldPolicy is the budget by which hashing favours the rest of the process. Between
// segments of a hash (see argon2.YieldEvery), if other goroutines of the process are
// running or waiting to run, at two looks in a row, the hash pauses, giving up its
// core, until that work has drained or the hash has used its hold-back allowance: grace
// plus perCompute times the time it has spent computing so far. The allowance grows as
// the hash computes, so a hash steps aside for the API throughout, never running to its
// end without pausing as it would after a fixed allowance ran out (the API's p99 during
// a login flood was that burst), and yet it can never be held back for more than
// perCompute times its own work, so no load starves it:
//
//	time from a hash's start to its end <= (1+perCompute) × its computing time + grace + one oversleep
//
// where its computing time is its work alone at whatever share of a core the kernel
// gives its thread, and one oversleep is how much longer than asked a single pause
// slept (a pause never asks for more than the allowance left, and none starts while a
// past oversleep has the hash over its allowance, so oversleeps do not add up).
//
// The runtime's own counts are the signal, rather than a count of calls in flight: they
// see every goroutine the process runs (the edge's, every service's in one process,
// the garbage collector's) and only while it runs or could, not while a call waits on
// PostgreSQL or Redis, which need no core of this process. They cost a brief lock of
// the scheduler, nothing beside a hundred microseconds of hashing.
type yieldPolicy struct {
	// perCompute is how long a hash may be held back for each unit of time it has
	// computed, and grace how long before it has computed any.
	perCompute int
	grace      time.Duration
	// poll is how long a held-back hash sleeps before looking again.
	poll time.Duration
	// otherWork reports how many goroutines, besides the hashes computing, are running or
	// waiting to run: more than zero means the hash should step aside.
	otherWork func() int
	// now and sleep are the clock, injected so tests count held-back and computing time
	// without measuring it.
	now   func() time.Time
	sleep func(time.Duration)
	// heldBack, if set, is told how long each hash was held back, as it ends.
	heldBack func(time.Duration)
}

// newYieldPolicy is the policy hashers use by default: the runtime's goroutine counts,
// the real clock, holdBackPerCompute, holdBackGrace and yieldPoll.
func newYieldPolicy() *yieldPolicy {
	return &yieldPolicy{
		perCompute: holdBackPerCompute, grace: holdBackGrace, poll: yieldPoll,
		otherWork: otherGoroutines, now: time.Now, sleep: time.Sleep,
	}
}

// goroutineStates are the runtime's counts of the goroutines that hold or want a core.
var goroutineStates = [...]string{"/sched/goroutines/running:goroutines", "/sched/goroutines/runnable:goroutines"}

// otherGoroutines is how many goroutines of the process are running (on a P) or
// runnable, less the hashes computing: the work a hash steps aside for. A runtime
// without the counts (they came in Go 1.26) reads as none, so hashes never step aside.
func otherGoroutines() int {
	s := make([]metrics.Sample, len(goroutineStates))
	for i, name := range goroutineStates {
		s[i].Name = name
	}
	metrics.Read(s)
	var n int64
	for _, v := range s {
		if v.Value.Kind() != metrics.KindUint64 {
			return 0
		}
		n += int64(v.Value.Uint64()) //nolint:gosec // G115: a goroutine count fits
	}
	return int(n - computing.Load())
}

// goroutineStatesSupported reports whether the runtime has the counts otherGoroutines
// reads.
func goroutineStatesSupported() bool {
	found := 0
	for _, d := range metrics.All() {
		if slices.Contains(goroutineStates[:], d.Name) {
			found++
		}
	}
	return found == len(goroutineStates)
}

// start begins one hash's account: it counts as computing until end.
func (y *yieldPolicy) start() *hashTurn {
	computing.Add(1)
	return &hashTurn{policy: y, since: y.now()}
}

// hashTurn is one hash's account of how long it has computed and been held back.
type hashTurn struct {
	policy *yieldPolicy
	// since is when the hash last started computing: at start, or at the end of a pause.
	since    time.Time
	computed time.Duration
	held     time.Duration
	pauses   int
	// seen is whether the last look saw other work.
	seen bool
}

// allowance is how long, in all, the hash may have been held back by now.
func (h *hashTurn) allowance() time.Duration {
	return h.policy.grace + time.Duration(h.policy.perCompute)*h.computed
}

// yield is called by the hash between segments: it returns at once unless other work
// is waiting or running and the hash has hold-back left, in which case it sleeps (not
// counted as computing meanwhile) until the other work is gone or the allowance is
// spent.
func (h *hashTurn) yield() {
	y := h.policy
	now := y.now()
	h.computed += now.Sub(h.since)
	h.since = now
	if h.held >= h.allowance() {
		return
	}
	// Other work seen at one look only is let be: the runtime also counts a P whose
	// thread is between goroutines (one that a pausing hash has just left, say), and
	// work that lasts less than a yield interval is over before a pause would help it.
	// Work seen at two looks in a row is stepped aside for.
	if y.otherWork() <= 0 {
		h.seen = false
		return
	}
	if !h.seen {
		h.seen = true
		return
	}
	h.seen = false
	for {
		// Not computing while asleep; computing again before looking, since the look
		// sees this goroutine running.
		computing.Add(-1)
		start := y.now()
		y.sleep(min(y.poll, h.allowance()-h.held))
		h.since = y.now()
		h.held += h.since.Sub(start)
		computing.Add(1)
		h.pauses++
		if y.otherWork() <= 0 {
			return
		}
		if h.held >= h.allowance() {
			// The work is still there: the hash pauses again at its next look, once that
			// look's computing has earned it more allowance.
			h.seen = true
			return
		}
	}
}

// end closes the account: the hash no longer counts as computing.
func (h *hashTurn) end() {
	computing.Add(-1)
	if h.policy.heldBack != nil {
		h.policy.heldBack(h.held)
	}
}
