package main_test

import (
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
