package argon2

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"runtime/metrics"
	"testing"

	"github.com/stretchr/testify/require"
	upstream "golang.org/x/crypto/argon2"
)

// TestSameKeysAsUpstream is what makes the fork safe to carry: for one lane and for
// several, whatever the passes and memory, with checks or without, it derives exactly
// x/crypto's keys.
func TestSameKeysAsUpstream(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		time, memory uint32
		threads      uint8
		keyLen       uint32
	}{
		{1, 64, 1, 32},
		{2, 19 * 1024, 1, 32}, // OWASP's, as passwords are hashed
		{3, 256, 2, 32},
		{1, 1024, 4, 64},
		{2, 97, 3, 16}, // memory not a multiple of the lanes' sync points
	} {
		t.Run(fmt.Sprintf("t=%d,m=%d,p=%d", c.time, c.memory, c.threads), func(t *testing.T) {
			t.Parallel()
			pw, salt := make([]byte, 20), make([]byte, 16)
			_, _ = rand.Read(pw)
			_, _ = rand.Read(salt)
			want := upstream.IDKey(pw, salt, c.time, c.memory, c.threads, c.keyLen)
			require.Equal(t, want, IDKey(pw, salt, c.time, c.memory, c.threads, c.keyLen))
			require.Equal(t, upstream.Key(pw, salt, c.time, c.memory, c.threads, c.keyLen),
				Key(pw, salt, c.time, c.memory, c.threads, c.keyLen))

			// A check that does work of its own (allocating, rescheduling) between blocks,
			// and always says to go on.
			var calls int
			check := func() bool {
				calls++
				_ = make([]byte, 1024)
				runtime.Gosched()
				return true
			}
			key, ok := (*Memory)(nil).IDKeyUntil(pw, salt, c.time, c.memory, c.threads, c.keyLen, check)
			require.True(t, ok)
			require.Equal(t, want, key)
			// Memory rounds as deriveKey rounds it; the first two blocks of each lane come
			// from the initial hash, every other block of every pass is filled.
			lanes := 4 * uint32(c.threads)
			memory := max(c.memory/lanes*lanes, 2*lanes)
			filled := c.time*memory - 2*uint32(c.threads)
			require.Equal(t, int(filled/CheckEvery), calls, "check is called once every CheckEvery blocks filled")
		})
	}
}

// TestComputesOnTheCallingGoroutine counts the goroutines a derivation starts: none,
// where x/crypto starts one for every lane of every slice of every pass. A hashing
// worker relies on it: one hash takes one core, and pausing its goroutine pauses all of
// it.
func TestComputesOnTheCallingGoroutine(t *testing.T) {
	// Not parallel: other tests starting goroutines would blur the count.
	created := func() uint64 {
		s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	const passes = 16 // x/crypto: 16 passes × 4 slices = 64 goroutines for one lane
	pw, salt := []byte("password"), []byte("saltsaltsaltsalt")

	before := created()
	upstream.IDKey(pw, salt, passes, 64, 1, 32)
	require.GreaterOrEqual(t, created()-before, uint64(passes*syncPoints), "the metric sees x/crypto's goroutines")

	before = created()
	IDKey(pw, salt, passes, 64, 1, 32)
	IDKey(pw, salt, passes, 64, 4, 32)
	NewMemory(1024).IDKeyUntil(pw, salt, passes, 1024, 4, 32, func() bool { return true })
	require.Less(t, created()-before, uint64(syncPoints), "a derivation starts no goroutine")
}

// TestMemoryReused: computations one after another in one Memory, of several costs, the
// larger first so that smaller ones run in memory a previous hash has filled, give
// x/crypto's keys; the memory is kept up to the limit, and a computation above it gets
// memory of its own, leaving the kept memory as it was.
func TestMemoryReused(t *testing.T) {
	t.Parallel()
	m := NewMemory(256)
	for i, c := range []struct {
		time, memory uint32
		threads      uint8
	}{{2, 256, 1}, {1, 64, 1}, {3, 128, 2}, {2, 256, 1}, {1, 512, 1}, {2, 200, 4}} {
		pw, salt := []byte(fmt.Sprintf("password %d", i)), []byte("saltsaltsaltsalt")
		want := upstream.IDKey(pw, salt, c.time, c.memory, c.threads, 32)
		key, ok := m.IDKeyUntil(pw, salt, c.time, c.memory, c.threads, 32, func() bool { return true })
		require.True(t, ok)
		require.Equal(t, want, key, "computation %d", i)
		require.Equal(t, 256, cap(m.blocks), "the memory kept after computation %d", i)
	}
	key, ok := (*Memory)(nil).IDKeyUntil([]byte("p"), []byte("saltsaltsaltsalt"), 1, 64, 1, 32, nil)
	require.True(t, ok)
	require.Equal(t, upstream.IDKey([]byte("p"), []byte("saltsaltsaltsalt"), 1, 64, 1, 32), key, "no Memory: memory of its own")
}

// TestStopsWhenTheCheckSaysSo: a check that says no stops the computation at once, with
// no key, whichever lane and pass it is in; the Memory then computes the next key
// right, in memory the stopped computation left half filled.
func TestStopsWhenTheCheckSaysSo(t *testing.T) {
	t.Parallel()
	pw, salt := []byte("password"), []byte("saltsaltsaltsalt")
	m := NewMemory(1024)
	for _, stopAt := range []int{1, 5, 17} {
		calls := 0
		key, ok := m.IDKeyUntil(pw, salt, 3, 1024, 2, 32, func() bool {
			calls++
			return calls < stopAt
		})
		require.False(t, ok)
		require.Nil(t, key)
		require.Equal(t, stopAt, calls, "no check after the one that said no")
	}
	key, ok := m.IDKeyUntil(pw, salt, 3, 1024, 2, 32, func() bool { return true })
	require.True(t, ok)
	require.Equal(t, upstream.IDKey(pw, salt, 3, 1024, 2, 32), key)
}
