package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"github.com/stretchr/testify/require"
)

// fakeProc is a /proc holding one process's stat line.
func fakeProc(t *testing.T, pid, stat string) procfs.FS {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, pid), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, pid, "stat"), []byte(stat), 0o600))
	fs, err := procfs.NewFS(dir)
	require.NoError(t, err)
	return fs
}

func TestProcessCPUCountsUserAndSystemTicks(t *testing.T) {
	t.Parallel()
	// A command name with spaces and a parenthesis of its own; utime 250, stime 50.
	line := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 12 0 100 3133440 391 18446744073709551615 1 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 1 1 1 1 1 1 1 0\n"
	got, err := processCPU(fakeProc(t, "4242", line), 4242)
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, got)

	_, err = processCPU(fakeProc(t, "4242", "4242 no name S 1"), 4242)
	require.Error(t, err)
	_, err = processCPU(fakeProc(t, "4242", "4242 (x) S 1 2"), 4242)
	require.Error(t, err)
}

func TestBusyCPULeavesOutIdleWaitingAndSteal(t *testing.T) {
	t.Parallel()
	// In seconds, as procfs gives them: user nice system idle iowait irq softirq steal guest guest_nice.
	got := busy(procfs.CPUStat{User: 1.00, Nice: 0.20, System: 0.30, Idle: 90, Iowait: 4, IRQ: 0.05, SoftIRQ: 0.06, Steal: 7, Guest: 0.8, GuestNice: 0.09})
	require.InDelta(t, float64(1610*time.Millisecond), float64(got), float64(time.Microsecond))
}

// The meter reads this very process: spinning for a while shows up as its CPU time.
func TestProcessCPUSeesWork(t *testing.T) {
	fs, err := procfs.NewDefaultFS()
	require.NoError(t, err)
	before, err := processCPU(fs, os.Getpid())
	require.NoError(t, err)
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := processCPU(fs, os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, after-before, 100*time.Millisecond)
	busyBefore, err := machineCPU(fs)
	require.NoError(t, err)
	require.Positive(t, busyBefore)
}
