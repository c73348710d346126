package main

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStatCPUCountsUserAndSystemTicks(t *testing.T) {
	t.Parallel()
	// A command name with spaces and a parenthesis of its own; utime 250, stime 50.
	line := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 12 0 100 0 0\n"
	got, err := statCPU([]byte(line))
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, got)

	_, err = statCPU([]byte("4242 no name S 1"))
	require.Error(t, err)
	_, err = statCPU([]byte("4242 (x) S 1 2"))
	require.Error(t, err)
}

func TestBusyCPULeavesOutIdleWaitingAndSteal(t *testing.T) {
	t.Parallel()
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := busyCPU([]byte("cpu  100 20 30 9000 400 5 6 700 80 9\ncpu0 1 2 3 4\n"))
	require.NoError(t, err)
	require.Equal(t, 161*clockTick, got)

	_, err = busyCPU([]byte("intr 1 2 3"))
	require.Error(t, err)
}

// The meter reads this very process: spinning for a while shows up as its CPU time.
func TestProcessCPUSeesWork(t *testing.T) {
	before, err := processCPU(os.Getpid())
	require.NoError(t, err)
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := processCPU(os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, after-before, 100*time.Millisecond)
}
