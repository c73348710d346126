package password

import "golang.org/x/sys/unix"

// lowerThreadPriority sets the calling thread's nice value to hashNice. On Linux a nice
// value belongs to a thread (PRIO_PROCESS with a thread id), not to the whole process,
// and raising it needs no privilege.
func lowerThreadPriority() error {
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), hashNice)
}
