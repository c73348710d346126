package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed gcra.lua
var gcraScript string

// Redis decides with the state kept in Redis, which every gateway replica
// shares. Each decision is one EVALSHA of a script Redis runs atomically, so
// concurrent calls for one key, from any replica, never overspend.
type Redis struct {
	client redis.UniversalClient
	script *redis.Script
}

// NewRedis returns a limiter keeping its state in client's Redis (a single
// server, a cluster or a Sentinel-managed primary).
func NewRedis(client redis.UniversalClient) *Redis {
	return &Redis{client: client, script: redis.NewScript(gcraScript)}
}

// DecisionTimeout bounds one decision's round trip to Redis. Redis answers in well
// under a millisecond; a stalled Redis must turn into an error the caller handles
// (failing open or UNAVAILABLE) well inside a call's deadline, not spend it.
const DecisionTimeout = 500 * time.Millisecond

// redisKey wraps key in a hash tag, so that in a cluster the whole key, not
// just part of it, picks the slot; the prefix keeps our keys apart from those
// of other features sharing the server.
func redisKey(key string) string { return "ratelimit:{" + key + "}" }

// Allow spends cost units of key's budget under l if that many are left, and
// reports the decision either way. It fails on invalid arguments (a cost
// above l.Burst wraps [ErrCostExceedsBurst]) and on any Redis error.
//
// The script is sent by its SHA1 and, the first time a server has not seen
// it (NOSCRIPT), once in full.
func (r *Redis) Allow(ctx context.Context, key string, l Limit, cost int) (Decision, error) {
	g, err := newGCRA(l, cost)
	if err != nil {
		return Decision{}, err
	}
	d, _, err := r.allow(ctx, key, l, g, cost, 0)
	return d, err
}

// allow is Allow with its arguments checked and converted, and a lease: when
// cost is allowed, up to extra more units are spent too, as many as are left,
// and their number returned with the decision.
func (r *Redis) allow(ctx context.Context, key string, l Limit, g gcra, cost, extra int) (Decision, int, error) {
	ctx, cancel := context.WithTimeout(ctx, DecisionTimeout)
	defer cancel()
	res, err := r.script.Run(ctx, r.client, []string{redisKey(key)}, g.interval, g.tolerance, cost, extra).Int64Slice()
	if err != nil {
		return Decision{}, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(res) != 5 {
		return Decision{}, 0, fmt.Errorf("ratelimit: redis: the script returned %d values, want 5", len(res))
	}
	return Decision{
		Allowed:    res[0] == 1,
		Limit:      l.Burst,
		Remaining:  int(res[1]),
		RetryAfter: micros(res[2]),
		ResetAfter: micros(res[3]),
	}, int(res[4]), nil
}
