package telemetry

import (
	"math"

	"github.com/prometheus/procfs"
)

// readProcess samples the process from /proc.
func readProcess() processSample {
	var s processSample
	readCPU(&s)
	p, err := procfs.Self()
	if err != nil {
		return s
	}
	if st, err := p.Stat(); err == nil {
		s.resident, s.virt, s.memoryOK = int64(st.ResidentMemory()), clampInt64(uint64(st.VirtualMemory())), true
	}
	if n, err := p.FileDescriptorsLen(); err == nil {
		s.fds, s.fdsOK = int64(n), true
	}
	return s
}

// clampInt64 converts a byte count to the int64 a gauge records; a count past
// MaxInt64 (no real process has one) reads as the maximum rather than wrapping negative.
func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}
