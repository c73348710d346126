package password

import (
	"time"

	"golang.org/x/sys/unix"
)

// lowerThread sets the calling thread's nice value to hashNice, after making sure its
// CPU time can be read (threadCPU), without which a starved hash could not be told
// apart. On Linux a nice value belongs to a thread (PRIO_PROCESS with a thread id), not
// to the whole process, and raising it needs no privilege; lowering it again would,
// which is why a starved hash moves to another thread instead (see pool.run).
func lowerThread() error {
	if _, err := threadCPU(); err != nil {
		return err
	}
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), hashNice)
}

// threadCPU is the CPU time the calling thread has had.
func threadCPU() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}
