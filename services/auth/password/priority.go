package password

import "time"

// hashNice is the nice value of a hashing worker's thread. Against a thread at the
// default 0 its weight is 110 to 1024, so on a contended core the kernel runs the API
// first, wakes it ahead of a hash (a lower weight puts a hash's virtual deadline later),
// and gives hashing about a tenth of the core meanwhile; on a core nothing else wants a
// hash takes it all, so a login flood still uses every idle cycle.
//
// Measured with the auth benchmarks on 2 cores (BenchmarkCurrentUserUnderLoginFlood): at
// 10, 15 and 19 the p99 of other calls during a flood stayed within 1.1–1.8× idle, at 5
// it was 2.8–4.5×. Stepping aside in Go instead (the
// hasher before, at normal priority, sleeping while the runtime counted other
// goroutines running) left a p99 of 7–11× idle: a request's work waits on Redis,
// PostgreSQL and the network, where no goroutine of the process is runnable, so the
// hashes went on computing and the kernel made the request's threads wait their turn;
// on top of nice 10 it still gave 6–8×, its pauses' wakes costing the API more than
// they gave.
// The price of a low priority is starvation when the CPU is kept busy by anything else
// (the API's own load, neighbours in the same cgroup): at 10 a hash beside eight busy
// threads on two cores gets under 3 % of a core, and sign-ups ran past the edge's 3 s
// call cap. starvedAfter bounds it.
const hashNice = 10

// starvedAfter is how long a hash runs at low priority before it is judged, and
// starvedShare the share of that time below which it is starved: if it has had less
// than a quarter of the time since it started (its thread's CPU time against the wall
// clock), the CPU is kept busy by other work at normal priority, and the hash is given
// up and computed again at normal priority (see pool.run). During a login flood a hash
// has about (cores - the API's load) / hashers of the time, typically a half, which is
// no starvation: judged at a half, a third of the hashes of a flood beside a busy API
// were computed again, at normal priority, and the API's p99 doubled. An unstarved hash
// (about 40 ms of one core at OWASP's cost on the machines measured) mostly ends before
// it is judged; a starved one loses what it computed meanwhile, at most a quarter of
// starvedAfter, and then takes as long as hashing at normal priority under the same
// load.
const (
	starvedAfter = 100 * time.Millisecond
	starvedShare = 4 // a quarter
)

// starvation judges hashes on lowered threads. Its clocks are injected so tests decide
// what a hash has had without measuring it.
type starvation struct {
	after time.Duration
	now   func() time.Time
	// cpu is the calling thread's CPU time.
	cpu func() (time.Duration, error)
}

func newStarvation() *starvation {
	return &starvation{after: starvedAfter, now: time.Now, cpu: threadCPU}
}

// watch starts judging a hash that is about to compute on the calling thread, which
// must be locked to its goroutine; it returns the check to call between segments of
// the hash, which says whether to go on.
func (s *starvation) watch() func() bool {
	start := s.now()
	cpu0, err := s.cpu()
	if err != nil {
		return nil // nothing to judge by: the hash computes to its end
	}
	return func() bool {
		elapsed := s.now().Sub(start)
		if elapsed < s.after {
			return true
		}
		cpu, err := s.cpu()
		return err != nil || starvedShare*(cpu-cpu0) >= elapsed
	}
}
