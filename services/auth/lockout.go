package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// lockout counts failed logins per account and per client IP in Redis, so every replica
// shares the count. After max failures within the window, attempts are refused until the
// window that began with the first failure passes.
type lockout struct {
	rdb    redis.UniversalClient
	prefix string
	max    int
	window time.Duration
}

// ipFactor lets an address fail this many times more than an account: many people can
// share one address behind a NAT, while one account has one owner.
const ipFactor = 10

// countFailure increments a counter, starting its window on the first failure.
var countFailure = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`)

func (l *lockout) accountKey(email string) string {
	// Hashed, so the keys do not list who tried to log in.
	sum := sha256.Sum256([]byte(email))
	return l.prefix + "acct:" + hex.EncodeToString(sum[:16])
}

func (l *lockout) ipKey(ip string) string { return l.prefix + "ip:" + ip }

// blocked reports how long attempts for this account or address must wait; zero means
// they may proceed.
func (l *lockout) blocked(ctx context.Context, email, ip string) (time.Duration, error) {
	pipe := l.rdb.Pipeline()
	acct := pipe.Get(ctx, l.accountKey(email))
	acctTTL := pipe.PTTL(ctx, l.accountKey(email))
	var addr *redis.StringCmd
	var addrTTL *redis.DurationCmd
	if ip != "" {
		addr = pipe.Get(ctx, l.ipKey(ip))
		addrTTL = pipe.PTTL(ctx, l.ipKey(ip))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	var wait time.Duration
	if n, _ := acct.Int(); n >= l.max {
		wait = max(wait, acctTTL.Val())
	}
	if addr != nil {
		if n, _ := addr.Int(); n >= l.max*ipFactor {
			wait = max(wait, addrTTL.Val())
		}
	}
	return wait, nil
}

// fail records a failed attempt.
func (l *lockout) fail(ctx context.Context, email, ip string) error {
	ms := l.window.Milliseconds()
	if err := countFailure.Run(ctx, l.rdb, []string{l.accountKey(email)}, ms).Err(); err != nil {
		return err
	}
	if ip == "" {
		return nil
	}
	return countFailure.Run(ctx, l.rdb, []string{l.ipKey(ip)}, ms).Err()
}

// succeed clears the account's count after a successful login; the address's count
// stays, so one good account cannot launder guesses against others.
func (l *lockout) succeed(ctx context.Context, email string) error {
	return l.rdb.Del(ctx, l.accountKey(email)).Err()
}

// throttle allows at most limit events per window for key, for email-sending
// endpoints. It reports whether this event is allowed.
func (l *lockout) throttle(ctx context.Context, key string, limit int, window time.Duration) (bool, error) {
	n, err := countFailure.Run(ctx, l.rdb, []string{l.prefix + "mail:" + key}, window.Milliseconds()).Int()
	if err != nil {
		return false, err
	}
	return n <= limit, nil
}
