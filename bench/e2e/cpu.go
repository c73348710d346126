package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// processCPU reads the CPU time (user and system) process pid has used so far.
func processCPU(fs procfs.FS, pid int) (time.Duration, error) {
	p, err := fs.Proc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return seconds(st.CPUTime()), nil
}

// machineCPU reads the CPU time every core of the machine has spent busy so far.
func machineCPU(fs procfs.FS) (time.Duration, error) {
	st, err := fs.Stat()
	if err != nil {
		return 0, err
	}
	return busy(st.CPUTotal), nil
}

// busy is the time the cores spent working: idle and iowait are not work, steal is
// another guest's on this host, and guest times are already counted in user and nice.
func busy(c procfs.CPUStat) time.Duration {
	return seconds(c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// cpuMeter reads, across one measurement, the CPU time of each named process and of the
// whole machine, to say what a request costs and where.
type cpuMeter struct {
	fs    procfs.FS
	names []string
	pids  []int
	start []time.Duration
}

// machine names the whole machine's busy time in a cpuMeter's report.
const machine = "machine"

// meterCPU starts reading: the named processes (name → pid, in names' order) and the
// machine.
func meterCPU(fs procfs.FS, names []string, pids []int) (*cpuMeter, error) {
	m := &cpuMeter{fs: fs, names: names, pids: pids}
	now, err := m.read()
	if err != nil {
		return nil, err
	}
	m.start = now
	return m, nil
}

func (m *cpuMeter) read() ([]time.Duration, error) {
	out := make([]time.Duration, 0, len(m.pids)+1)
	for _, pid := range m.pids {
		t, err := processCPU(m.fs, pid)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	t, err := machineCPU(m.fs)
	if err != nil {
		return nil, err
	}
	return append(out, t), nil
}

// perRequest ends the reading: each process's CPU time per request over n requests,
// and the machine's last.
func (m *cpuMeter) perRequest(n int) (string, error) {
	end, err := m.read()
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", fmt.Errorf("no requests")
	}
	var s []string
	for i, name := range append(m.names, machine) {
		s = append(s, fmt.Sprintf("%s %.0f µs", name, float64(end[i]-m.start[i])/float64(n)/float64(time.Microsecond)))
	}
	return strings.Join(s, ", "), nil
}
