package telemetry

import "github.com/prometheus/procfs"

// readProcess samples the process from /proc.
func readProcess() processSample {
	var s processSample
	readCPU(&s)
	p, err := procfs.Self()
	if err != nil {
		return s
	}
	if st, err := p.Stat(); err == nil {
		s.resident, s.virt, s.memoryOK = int64(st.ResidentMemory()), int64(st.VirtualMemory()), true
	}
	if n, err := p.FileDescriptorsLen(); err == nil {
		s.fds, s.fdsOK = int64(n), true
	}
	return s
}
