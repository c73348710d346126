//go:build unix

package telemetry

import (
	"syscall"
	"time"
)

// readCPU fills the process's user and system CPU time.
func readCPU(s *processSample) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return
	}
	s.user = time.Duration(ru.Utime.Nano())
	s.system = time.Duration(ru.Stime.Nano())
	s.cpuOK = true
}
