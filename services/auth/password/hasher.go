package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/metric"

	"github.com/backplane/backplane/services/auth/password/internal/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	// Memory in KiB.
	Memory uint32
	// Time is the number of passes.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// OWASP is the floor OWASP's Password Storage Cheat Sheet sets for argon2id:
// m=19 MiB, t=2, p=1.
var OWASP = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// maxStoredKeyLen bounds the key a stored hash may carry, and so the output Verify
	// asks argon2 for: twice what Hash writes.
	maxStoredKeyLen = 2 * keyLen
)

// ErrMalformedHash means a stored hash is not an argon2id PHC string we can read.
var ErrMalformedHash = errors.New("password: malformed hash")

// Hasher hashes and verifies passwords. It is safe for concurrent use.
type Hasher struct {
	params  Params
	workers *pool
	dummy   string
	// computing is called as each argon2id computation is asked for; nil for none.
	computing func(context.Context)
	log       *slog.Logger
	meters    metric.MeterProvider
	// ordinary hashes at normal priority and leaves GOMAXPROCS as it is.
	ordinary bool
}

// HasherOption changes how NewHasher builds a Hasher.
type HasherOption func(*Hasher)

// WithComputeHook calls fn, with the caller's context, each time an argon2id
// computation is asked for (Hash, Verify and VerifyDummy alike), before it waits for a
// slot. Tests count work with it, and hold computations back to line callers up, instead
// of measuring time.
func WithComputeHook(fn func(ctx context.Context)) HasherOption {
	return func(h *Hasher) { h.computing = fn }
}

// WithLogger is where the hasher says that it cannot lower its threads' priority (not
// Linux, or a sandbox refusing it), so that a login flood competes with the API for the
// CPU.
func WithLogger(log *slog.Logger) HasherOption {
	return func(h *Hasher) { h.log = log }
}

// WithMeterProvider counts, on backplane.auth.password.restarts, the hashes starved of
// the CPU at low priority and computed again at normal priority: a count that keeps
// rising says the machine has no cycles to spare for logins, and each such login took
// longer by up to the time it was starved (see starvation).
func WithMeterProvider(mp metric.MeterProvider) HasherOption {
	return func(h *Hasher) { h.meters = mp }
}

// WithOrdinaryScheduling hashes on plain bounded goroutines at normal priority, holding
// Go's Ps like any other work: benchmarks measure the difference with it.
func WithOrdinaryScheduling() HasherOption {
	return func(h *Hasher) { h.ordinary = true }
}

// NewHasher returns a hasher with the given parameters and at most concurrency hashes
// computed at once (one per core when zero or less). It computes one hash before it
// returns, which ctx bounds.
//
// Each hash runs whole (every lane, see package argon2) on a worker thread whose
// priority is lowered (hashNice), so the kernel runs the rest of the API first and
// hashing takes the cycles left over; a hash starved at that priority is computed again
// at normal priority (see starvation), so no load can hold a login back for long.
// GOMAXPROCS grows by one for each live worker, so that the rest of the process never
// waits for a P that a hash holds (see pool).
func NewHasher(ctx context.Context, params Params, concurrency int, opts ...HasherOption) (*Hasher, error) {
	if params.Memory == 0 || params.Time == 0 || params.Threads == 0 {
		return nil, errors.New("password: argon2id parameters must be positive")
	}
	if concurrency <= 0 {
		concurrency = cores()
	}
	h := &Hasher{params: params}
	for _, o := range opts {
		o(h)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.workers = newPool(concurrency, !h.ordinary)
	// Told on a worker, later: the context keeps NewHasher's values (a trace), not its end.
	laterCtx := context.WithoutCancel(ctx)
	if h.meters != nil {
		restarts, err := h.meters.Meter("github.com/backplane/backplane/services/auth/password").Int64Counter(
			"backplane.auth.password.restarts", metric.WithUnit("{hash}"),
			metric.WithDescription("Password hashes starved of the CPU on a thread of lowered priority and computed again at normal priority."))
		if err != nil {
			return nil, fmt.Errorf("password: %w", err)
		}
		h.workers.restarted = func() { restarts.Add(laterCtx, 1) }
	}
	h.workers.lowerFailed = func(err error) {
		h.log.WarnContext(laterCtx, "password hashing runs at normal priority: a login flood competes with the API for the CPU", "error", err)
	}
	if !h.ordinary {
		// Each worker keeps one hash's memory for the next (up to this hasher's own cost),
		// instead of allocating it per hash: a login flood allocating 19 MiB per hash ran
		// the garbage collector every few hashes, and every cycle stops the world twice,
		// waiting for each hash to be preempted (1-11 ms a pause on a loaded machine),
		// which the API's calls in flight wait out.
		h.workers.keepKiB = params.Memory
	}
	// The dummy hash is compared against when an account does not exist, so that an
	// unknown email costs the same time as a wrong password.
	var err error
	if h.dummy, err = h.Hash(ctx, "dummy password for timing"); err != nil {
		return nil, err
	}
	return h, nil
}

// derive computes one argon2id key on a hashing worker, once one is free; if ctx ends
// first it returns ctx's error without hashing.
func (h *Hasher) derive(ctx context.Context, password, salt []byte, p Params, keyLen uint32) ([]byte, error) {
	if h.computing != nil {
		h.computing(ctx)
	}
	var key []byte
	err := h.workers.do(ctx, func(check func() bool, mem *argon2.Memory) bool {
		var done bool
		key, done = mem.IDKeyUntil(password, salt, p.Time, p.Memory, p.Threads, keyLen, check)
		return done
	})
	return key, err
}

// Hash returns the PHC string of a password:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>, base64 without padding.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := h.derive(ctx, []byte(password), salt, h.params, keyLen)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.params.Memory, h.params.Time, h.params.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches the PHC string encoded, comparing in
// constant time. The hash's own parameters are used, so raising the hasher's parameters
// does not lock out existing accounts; NeedsRehash says when to upgrade them.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, err
	}
	got, err := h.derive(ctx, []byte(password), salt, p, uint32(len(want))) //nolint:gosec // G115: decode bounds len(want) to maxStoredKeyLen
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// VerifyDummy spends the time of one verification and returns false, for an unknown
// account.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, err := h.Verify(ctx, password, h.dummy)
	return err
}

// NeedsRehash reports whether encoded was made with weaker parameters than the
// hasher's.
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, _, _, err := decode(encoded)
	return err != nil || p.Memory < h.params.Memory || p.Time < h.params.Time || p.Threads < h.params.Threads
}

func decode(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, ErrMalformedHash
	}
	// Bounds stop a tampered row from making one verification cost gigabytes.
	if p.Memory == 0 || p.Memory > 1<<20 || p.Time == 0 || p.Time > 16 || p.Threads == 0 {
		return Params{}, nil, nil, ErrMalformedHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return Params{}, nil, nil, ErrMalformedHash
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxStoredKeyLen {
		return Params{}, nil, nil, ErrMalformedHash
	}
	return p, salt, key, nil
}
