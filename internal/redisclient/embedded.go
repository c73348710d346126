package redisclient

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// StartEmbedded starts an in-process Redis (miniredis) on a free port of
// 127.0.0.1 and returns its URL, for [Open], and a function that stops it.
//
// It is for `backplane dev` only, when no Redis server is available: the
// data lives in memory and is gone when stop runs or the process exits, it
// has no authentication, and miniredis implements most of Redis's commands
// but not all (and Lua only partly). Keys expire in real time, as in Redis.
func StartEmbedded() (url string, stop func(), err error) {
	m := miniredis.NewMiniRedis()
	// miniredis only expires keys when told to (it is made for unit tests);
	// services need rate-limit windows and sessions to run out on their own.
	m.ClockTTL(true)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, fmt.Errorf("redisclient: start embedded redis: %w", err)
	}
	return "redis://" + m.Addr(), m.Close, nil
}
