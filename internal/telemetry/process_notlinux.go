//go:build !linux

package telemetry

// readProcess samples what the platform offers without /proc: CPU time only.
func readProcess() processSample {
	var s processSample
	readCPU(&s)
	return s
}
