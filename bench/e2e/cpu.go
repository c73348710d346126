package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of /proc's CPU times: 100 on every
// architecture Go runs Linux on.
const clockTick = 10 * time.Millisecond

// processCPU reads the CPU time (user and system) process pid has used so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	t, err := statCPU(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return t, nil
}

// statCPU reads the user and system time from a /proc/<pid>/stat line.
func statCPU(b []byte) (time.Duration, error) {
	// The command name, field 2, may hold spaces and parentheses: the fields counted
	// from after its closing parenthesis are safe.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state is field 3, utime field 14 and stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the name", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// machineCPU reads the CPU time every core of the machine has spent busy so far.
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return busyCPU(b)
}

// busyCPU reads the time every core spent busy from /proc/stat.
func busyCPU(b []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat starts %q", line)
	}
	var busy int64
	for i, s := range f[1:] {
		// idle (4th) and iowait (5th) are not work, steal (8th) is another guest's on
		// this host, and guest times are already counted in user and nice.
		if i == 3 || i == 4 || i >= 7 {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}

// cpuMeter reads, across one measurement, the CPU time of each named process and of the
// whole machine, to say what a request costs and where.
type cpuMeter struct {
	names []string
	pids  []int
	start []time.Duration
}

// machine names the whole machine's busy time in a cpuMeter's report.
const machine = "machine"

// meterCPU starts reading: the named processes (name → pid, in names' order) and the
// machine.
func meterCPU(names []string, pids []int) (*cpuMeter, error) {
	m := &cpuMeter{names: names, pids: pids}
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
		t, err := processCPU(pid)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	t, err := machineCPU()
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
