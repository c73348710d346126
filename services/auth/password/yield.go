package password

import (
	"runtime/metrics"
	"slices"
	"sync/atomic"
	"time"
)

const (
	// holdBackLimit is the longest one hash may be held back, in all, while the rest of
	// the process has work: a login is never later than its hash's own time plus this,
	// however busy the process, and the kernel shares the CPU fairly between the hash
	// and everything outside the process, so no load can starve it.
	holdBackLimit = 100 * time.Millisecond
	// yieldPoll is how long a held-back hash sleeps before it looks again whether the
	// process's other work has drained. (Go's timers may sleep up to a millisecond for
	// it when the process has nothing else to do, which is when it matters least.)
	yieldPoll = 250 * time.Microsecond
)

// computing counts the hashes computing now, in the whole process, so that they are
// told apart from the work they step aside for. It is process-wide because the runtime's
// goroutine counts are: a process with several hashers (tests build dozens) must not
// take one hasher's hashes for another's other work.
var computing atomic.Int64

// yieldPolicy is the budget by which hashing favours the rest of the process. Between
// segments of a hash (see argon2.YieldEvery), if other goroutines of the process are
// running or waiting to run, at two looks in a row, the hash pauses, giving up its
// core, until that work has drained or the hash has been held back for limit in all;
// after that it computes to the end without pausing. So the API gets the CPU first during a login flood, and a
// hash is never held back for more than limit, whatever else runs.
//
// The runtime's own counts are the signal, rather than a count of calls in flight: they
// see every goroutine the process runs (the edge's, every service's in one process,
// the garbage collector's) and only while it runs or could, not while a call waits on
// PostgreSQL or Redis, which need no core of this process. They cost a brief lock of
// the scheduler, nothing beside a hundred microseconds of hashing.
type yieldPolicy struct {
	// limit is the longest one hash is held back in all.
	limit time.Duration
	// poll is how long a held-back hash sleeps before looking again.
	poll time.Duration
	// otherWork reports how many goroutines, besides the hashes computing, are running or
	// waiting to run: more than zero means the hash should step aside.
	otherWork func() int
	// now and sleep are the clock, injected so tests count held-back time without
	// measuring it.
	now   func() time.Time
	sleep func(time.Duration)
	// heldBack, if set, is told how long each hash was held back, as it ends.
	heldBack func(time.Duration)
}

// newYieldPolicy is the policy hashers use by default: the runtime's goroutine counts,
// the real clock, holdBackLimit and yieldPoll.
func newYieldPolicy() *yieldPolicy {
	return &yieldPolicy{limit: holdBackLimit, poll: yieldPoll, otherWork: otherGoroutines, now: time.Now, sleep: time.Sleep}
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
	return &hashTurn{policy: y}
}

// hashTurn is one hash's account of how long it has been held back.
type hashTurn struct {
	policy *yieldPolicy
	held   time.Duration
	pauses int
	// seen is whether the last look saw other work.
	seen bool
}

// yield is called by the hash between segments: it returns at once unless other work
// is waiting or running and the hash still has hold-back left, in which case it sleeps
// (not counted as computing meanwhile) until the other work is gone or the allowance is
// spent.
func (h *hashTurn) yield() {
	y := h.policy
	if h.held >= y.limit {
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
		y.sleep(min(y.poll, y.limit-h.held))
		h.held += y.now().Sub(start)
		computing.Add(1)
		h.pauses++
		if h.held >= y.limit || y.otherWork() <= 0 {
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
