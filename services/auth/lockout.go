package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// lockout throttles password guesses in Redis, so every replica shares the counts. It
// follows OWASP's guidance against both brute force and malicious lockout:
//
//   - An attempt is reserved, atomically, before any hashing: N parallel guesses cost
//     N attempts, and the (N+1)th waits without a hash being computed.
//   - A client that has not signed in to the account before is throttled by account and
//     source together (max per window), by account over every source (max × ipFactor),
//     and by source over every account (max × ipFactor). An attacker's guesses from one
//     address lock that address out of the account, not the owner elsewhere.
//   - A client that presents the account's device token (handed out by an earlier
//     successful sign-in) is counted on its own: strangers' guesses do not lock it out.
//   - The account's keys include a fingerprint of its password hash, so a password
//     reset (or change) starts every count of the account afresh.
//
// A window begins with its first attempt; a count reaching its limit refuses further
// attempts until that window ends.
type lockout struct {
	rdb    redis.UniversalClient
	prefix string
	max    int
	window time.Duration
}

// ipFactor lets an address, or an account over every address, fail this many times more
// than one account from one address: many people can share one address behind a NAT,
// and an attacker spread over many addresses must not lock the owner out everywhere.
const ipFactor = 10

// reserveAttempt counts an attempt against KEYS[1] unless it has already reached its
// limit ARGV[2], starting its window ARGV[1] (ms) with the first. It returns {1, 0} when
// reserved and {0, ms to wait} when refused. Each key is reserved on its own (keys of
// one attempt may live on different Redis Cluster slots); an attempt refused by one key
// gives back what it reserved on the others.
var reserveAttempt = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[2]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then ttl = tonumber(ARGV[1]) end
  return {0, ttl}
end
n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {1, 0}
`)

// giveBack returns a reserved attempt, without ever going below zero or outliving the
// window.
var giveBack = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 1 then redis.call('DEL', KEYS[1]) else redis.call('DECR', KEYS[1]) end
return 0
`)

// countEvent increments a counter, starting its window on the first event.
var countEvent = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`)

// attempt names who is guessing at which account.
type attempt struct {
	// email is the account's normalised address, known or not.
	email string
	// credential fingerprints the account's password hash ("" for an unknown account),
	// so that setting a new password starts the account's counts afresh.
	credential string
	// ip is the client's address; "" when unknown.
	ip string
	// device is the id of the account's trusted device the client presented, if any.
	device string
}

// reservation is an attempt's claim on its counters, to settle once the password has
// been checked.
type reservation struct {
	l        *lockout
	reserved []string
	// clear are the keys a success deletes: the account's and the device's.
	clear []string
	// refund are the keys a success gives back: the address's.
	refund []string
}

func (l *lockout) hashed(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	// Hashed, so the keys do not list who tried to sign in, or from where.
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// reserve claims one attempt on every counter that applies, before the password is
// checked. It answers how long to wait when a counter has reached its limit (and then
// claims nothing), or a reservation to settle.
func (l *lockout) reserve(ctx context.Context, a attempt) (*reservation, time.Duration, error) {
	type counter struct {
		key   string
		limit int
	}
	var counters []counter
	r := &reservation{l: l}
	if a.device != "" {
		key := l.prefix + "device:" + l.hashed(a.device)
		counters = append(counters, counter{key, l.max})
		r.clear = append(r.clear, key)
	} else {
		pair := l.prefix + "pair:" + l.hashed(a.email, a.credential, a.ip)
		acct := l.prefix + "acct:" + l.hashed(a.email, a.credential)
		counters = append(counters, counter{pair, l.max}, counter{acct, l.max * ipFactor})
		r.clear = append(r.clear, pair, acct)
		if a.ip != "" {
			addr := l.prefix + "ip:" + a.ip
			counters = append(counters, counter{addr, l.max * ipFactor})
			r.refund = append(r.refund, addr)
		}
	}
	pipe := l.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(counters))
	for i, c := range counters {
		cmds[i] = reserveAttempt.Eval(ctx, pipe, []string{c.key}, l.window.Milliseconds(), c.limit)
	}
	_, err := pipe.Exec(ctx)
	var wait time.Duration
	for i, cmd := range cmds {
		res, cerr := cmd.Int64Slice()
		if cerr != nil || len(res) != 2 {
			err = errors.Join(err, cerr)
			continue
		}
		if res[0] == 1 {
			r.reserved = append(r.reserved, counters[i].key)
		} else {
			wait = max(wait, time.Duration(res[1])*time.Millisecond)
		}
	}
	if err != nil || wait > 0 {
		// Give back what was claimed: refused attempts cost nothing, and a failure to
		// reach Redis must not count against anyone.
		if rerr := l.giveBack(ctx, r.reserved...); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if err != nil {
			return nil, 0, err
		}
		return nil, wait, nil
	}
	return r, 0, nil
}

func (l *lockout) giveBack(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	pipe := l.rdb.Pipeline()
	for _, k := range keys {
		giveBack.Eval(ctx, pipe, []string{k})
	}
	_, err := pipe.Exec(ctx)
	return err
}

// succeeded clears the account's (or the device's) counts and gives back the address's
// attempt: one good sign-in neither counts against its address nor launders the
// guesses the address made against other accounts.
func (r *reservation) succeeded(ctx context.Context) error {
	pipe := r.l.rdb.Pipeline()
	if len(r.clear) > 0 {
		pipe.Del(ctx, r.clear...)
	}
	for _, k := range r.refund {
		giveBack.Eval(ctx, pipe, []string{k})
	}
	_, err := pipe.Exec(ctx)
	return err
}

// abandon gives the whole reservation back, for an attempt that never learnt whether
// the password was right (its context ended, or hashing failed).
func (r *reservation) abandon(ctx context.Context) error {
	return r.l.giveBack(context.WithoutCancel(ctx), r.reserved...)
}

// throttle allows at most limit events per window for key, for email-sending
// endpoints. It reports whether this event is allowed.
func (l *lockout) throttle(ctx context.Context, key string, limit int, window time.Duration) (bool, error) {
	n, err := countEvent.Run(ctx, l.rdb, []string{l.prefix + "mail:" + key}, window.Milliseconds()).Int()
	if err != nil {
		return false, err
	}
	return n <= limit, nil
}
