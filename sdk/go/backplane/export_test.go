package backplane

import "time"

// SetClock replaces the clock by which c decides that its access token is about to
// expire, so that a test can move past the expiry without waiting for it.
func SetClock(c *Client, now func() time.Time) {
	c.session.now = now
}
