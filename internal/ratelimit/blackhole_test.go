package ratelimit

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// A Redis that accepts connections and never answers must cost a decision no more
// than DecisionTimeout, whatever the client's read timeout, and fail, so that the
// caller fails open or answers UNAVAILABLE in time.
func TestRedisDecisionFailsInTimeWhenRedisNeverAnswers(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ReadTimeout: time.Minute, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })

	start := time.Now()
	_, err = NewRedis(rdb).Allow(context.Background(), "blackhole", Limit{Rate: 10, Period: time.Second, Burst: 10}, 1)
	took := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, took, 4*DecisionTimeout, "the client's minute-long read timeout was not what ended it")
}
