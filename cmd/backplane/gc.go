package main

import "runtime/debug"

// defaultGCPercent is the collector's target when GOGC is unset: a heap may grow to five
// times what is live before the next cycle, instead of twice. Backplane's live heap is
// small (tens of MB) while every request allocates, so at Go's default of 100 the
// collector ran continuously under load (a quarter of the CPU of GET /v1/users/me). The
// Helm chart sets GOMEMLIMIT from the container's memory limit, which bounds the heap
// whatever this says.
const defaultGCPercent = 400

// tuneGC sets the collector's target to defaultGCPercent unless GOGC says otherwise.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
