package main_test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/backplane/backplane/internal/dbtest"
)

// BenchmarkDevStartup measures how long `backplane dev` takes, from exec to a 200 from
// /readyz, on a database that is already migrated: the restart a developer waits for.
// The baseline beside it is the cost of starting the process to print its version.
func BenchmarkDevStartup(b *testing.B) {
	dbURL := dbtest.NewDatabase(b)
	startDev(b, dbURL).stop(b) // migrate once, so the timed runs start on an existing database
	var total time.Duration
	for b.Loop() {
		p := startDev(b, dbURL)
		total += p.readyFor
		b.StopTimer()
		p.stop(b)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/ready")
}

// BenchmarkProcessStartBaseline is the floor under BenchmarkDevStartup: exec'ing the same
// binary to print its version, with no servers, database or Redis.
func BenchmarkProcessStartBaseline(b *testing.B) {
	for b.Loop() {
		if out, err := exec.CommandContext(b.Context(), binary, "version").CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}
