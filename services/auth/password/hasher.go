package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
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
	params Params
	slots  chan struct{}
	dummy  string
	// computing is called as each argon2id computation is asked for; nil for none.
	computing func(context.Context)
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

// NewHasher returns a hasher with the given parameters and at most concurrency hashes
// computed at once (GOMAXPROCS when zero or less). It computes one hash before it
// returns, which ctx bounds.
func NewHasher(ctx context.Context, params Params, concurrency int, opts ...HasherOption) (*Hasher, error) {
	if params.Memory == 0 || params.Time == 0 || params.Threads == 0 {
		return nil, errors.New("password: argon2id parameters must be positive")
	}
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	h := &Hasher{params: params, slots: make(chan struct{}, concurrency)}
	for _, o := range opts {
		o(h)
	}
	// The dummy hash is compared against when an account does not exist, so that an
	// unknown email costs the same time as a wrong password.
	var err error
	if h.dummy, err = h.Hash(ctx, "dummy password for timing"); err != nil {
		return nil, err
	}
	return h, nil
}

// acquire waits for a hashing slot, or for ctx to end.
func (h *Hasher) acquire(ctx context.Context) error {
	if h.computing != nil {
		h.computing(ctx)
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC string of a password:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>, base64 without padding.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, h.params.Time, h.params.Memory, h.params.Threads, keyLen)
	h.release()
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
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want))) //nolint:gosec // G115: decode bounds len(want) to maxStoredKeyLen
	h.release()
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
