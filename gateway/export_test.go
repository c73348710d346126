package gateway

import (
	"context"
	"time"
)

// FlushAPICalls sends the API calls counted so far, as the background loop does every
// interval, so that tests decide when.
func FlushAPICalls(ctx context.Context, g *Gateway) error { return g.calls.flush(ctx) }

// SetAPICallsClock replaces the clock that judges standings' age and periods' end.
func SetAPICallsClock(g *Gateway, now func() time.Time) {
	g.calls.mu.Lock()
	defer g.calls.mu.Unlock()
	g.calls.now = now
}
