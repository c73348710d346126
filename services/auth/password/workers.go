package password

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backplane/backplane/services/auth/password/internal/argon2"
)

// workerLinger is how long an idle worker waits for another hash before it ends, so
// that a steady trickle of logins does not start a worker (and add a P) for each.
const workerLinger = time.Second

// pool runs computations on at most size worker goroutines. Workers start when there is
// work and end once they have been idle for linger.
//
// Lowered (the hasher's default), each worker locks its goroutine to an OS thread of its
// own for its whole life and lowers that thread's priority (hashNice), so that the
// kernel, which sees every thread of every process, runs the rest of the API first; the
// thread ends with the worker, so no other goroutine ever runs on it. A computation is
// judged as it goes (see starvation): one starved of the CPU at low priority is given up
// and computed again from the start on an ordinary thread. Each live worker also adds a
// P to GOMAXPROCS (see leaseProc): a worker holds its P while it computes, and were
// GOMAXPROCS left at the number of cores, a flood of hashes would hold every P, no
// thread would wait on the network, and a request would not even be seen until the
// runtime's monitor polls for it (up to 10 ms), whatever the kernel's priorities. Where
// a thread's priority cannot be lowered, workers compute at normal priority and
// lowerFailed is told once. Not lowered, workers are plain bounded goroutines holding
// Go's Ps like any other work.
type pool struct {
	size    int
	lowered bool
	linger  time.Duration
	// keepKiB is how much argon2 memory each worker keeps from one computation to the
	// next (see argon2.Memory); zero for none.
	keepKiB uint32
	// lower lowers the calling thread's priority (lowerThread), and starved judges
	// computations on lowered threads.
	lower   func() error
	starved *starvation
	// lowerFailed, if set, is told (once) why a worker's thread could not be lowered;
	// restarted, if set, each time a starved computation is computed again.
	lowerFailed func(error)
	restarted   func()
	lowerOnce   sync.Once

	mu      sync.Mutex
	queue   []*job
	workers int
	idle    int
	// wake tells idle workers that the queue has work; buffered to size so a signal is
	// never lost while any worker could be waiting for it.
	wake chan struct{}
}

// job is one computation, waiting in the queue until a worker takes it.
type job struct {
	fn computation
	// state moves from queued to taken (by a worker) or to abandoned (by a caller whose
	// context ended first), exactly once.
	state  atomic.Int32
	done   chan struct{}
	panicV any
}

const (
	jobQueued int32 = iota
	jobTaken
	jobAbandoned
)

// computation is one hash as a worker runs it. It is to call check, unless check is nil,
// between segments of its work, and to stop, returning false, as soon as check says
// no; it then runs again from the start with a nil check, and must return true. It may
// compute in mem, the worker's own memory, which it must not keep.
type computation func(check func() bool, mem *argon2.Memory) (done bool)

// newPool returns a pool of at most size workers, lowered or plain bounded goroutines.
func newPool(size int, lowered bool) *pool {
	return &pool{
		size: size, lowered: lowered, linger: workerLinger,
		lower: lowerThread, starved: newStarvation(),
		wake: make(chan struct{}, size),
	}
}

// do runs fn on a worker and returns once it has run. If ctx ends while fn is still
// queued, do returns ctx's error at once and fn never runs; once a worker has taken fn,
// do waits for it (one hash is tens of milliseconds; a starved one up to starvedAfter
// more).
func (p *pool) do(ctx context.Context, fn computation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{fn: fn, done: make(chan struct{})}
	p.mu.Lock()
	p.queue = append(p.queue, j)
	// A new worker only for work the idle ones cannot take.
	start := len(p.queue) > p.idle && p.workers < p.size
	if start {
		p.workers++
	}
	if p.idle > 0 {
		select {
		case p.wake <- struct{}{}:
		default: // as many signals are pending as workers could wait for
		}
	}
	p.mu.Unlock()
	if start {
		go p.work()
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
			return ctx.Err()
		}
		<-j.done
	}
	if j.panicV != nil {
		// Re-raised on the caller's goroutine, where the server's recovery sees it, rather
		// than taking the process down from a worker.
		panic(j.panicV)
	}
	return nil
}

// work is a worker's whole life.
func (p *pool) work() {
	lowered := false
	if p.lowered {
		leaseProc(1)
		defer leaseProc(-1)
		// Never unlocked: a goroutine that ends locked takes its thread with it, so the
		// runtime never hands a lowered thread to other work.
		runtime.LockOSThread()
		if err := p.lower(); err != nil {
			runtime.UnlockOSThread()
			p.lowerOnce.Do(func() {
				if p.lowerFailed != nil {
					p.lowerFailed(err)
				}
			})
		} else {
			lowered = true
		}
	}
	// The worker's memory goes with it when it ends, so an idle hasher holds none.
	mem := argon2.NewMemory(p.keepKiB)
	for {
		j := p.next()
		if j == nil {
			return
		}
		p.run(j, mem, lowered)
	}
}

// next returns the next job still wanted, waiting up to linger for one; nil when the
// worker should end.
func (p *pool) next() *job {
	var linger *time.Timer
	timedOut := false
	for {
		p.mu.Lock()
		for len(p.queue) > 0 {
			j := p.queue[0]
			p.queue[0] = nil
			p.queue = p.queue[1:]
			if j.state.CompareAndSwap(jobQueued, jobTaken) {
				p.mu.Unlock()
				return j
			}
		}
		// The queue is checked under the lock before ending, so a job queued while the
		// worker was timing out is taken, not stranded.
		if timedOut {
			p.workers--
			p.mu.Unlock()
			return nil
		}
		p.idle++
		p.mu.Unlock()
		if linger == nil {
			linger = time.NewTimer(p.linger)
			defer linger.Stop()
		}
		select {
		case <-p.wake:
		case <-linger.C:
			timedOut = true
		}
		p.mu.Lock()
		p.idle--
		p.mu.Unlock()
	}
}

// run runs j, on this worker's lowered thread when lowered, and again from the start on
// an ordinary thread if it was starved there: the thread's priority cannot be raised
// again without privilege (RLIMIT_NICE), so the computation moves instead. The worker
// waits for the second run, which keeps the pool's bound and lends it mem.
func (p *pool) run(j *job, mem *argon2.Memory, lowered bool) {
	defer close(j.done)
	defer func() { j.panicV = recover() }()
	if !lowered {
		j.fn(nil, mem)
		return
	}
	if j.fn(p.starved.watch(), mem) {
		return
	}
	if p.restarted != nil {
		p.restarted()
	}

	again := make(chan any, 1)
	go func() {
		defer func() { again <- recover() }()
		j.fn(nil, mem)
	}()
	if v := <-again; v != nil {
		panic(v) // the caller's, as a panic of the first run would be
	}
}

// procs tracks the Ps that live hashing workers add to GOMAXPROCS. It is process-wide
// because GOMAXPROCS is: however many hashers a process builds (tests build dozens),
// the Ps come back when the last worker ends.
var procs struct {
	sync.Mutex
	base, extra int
}

// leaseProc adds n Ps to GOMAXPROCS (or gives them back, n < 0). Changing GOMAXPROCS
// stops the world briefly, which is why workers linger instead of starting per hash.
func leaseProc(n int) {
	procs.Lock()
	defer procs.Unlock()
	if procs.extra == 0 {
		procs.base = runtime.GOMAXPROCS(0)
	}
	procs.extra += n
	if procs.extra > 0 {
		runtime.GOMAXPROCS(procs.base + procs.extra)
		return
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// Back to the runtime's own choice, which follows the container's CPU limit.
		runtime.SetDefaultGOMAXPROCS()
		return
	}
	runtime.GOMAXPROCS(procs.base)
}

// cores is the number of Ps the process has without hashing workers: what "every core"
// means for the default concurrency.
func cores() int {
	procs.Lock()
	defer procs.Unlock()
	if procs.extra > 0 {
		return procs.base
	}
	return runtime.GOMAXPROCS(0)
}
