package password

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cheap keeps these tests fast; TestOWASPParams checks the production parameters.
var cheap = Params{Memory: 64, Time: 1, Threads: 1}

func TestHashAndVerify(t *testing.T) {
	t.Parallel()
	h, err := NewHasher(t.Context(), cheap, 2)
	require.NoError(t, err)
	ctx := context.Background()

	enc, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$"))
	other, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)
	require.NotEqual(t, enc, other, "salted")

	ok, err := h.Verify(ctx, "correct horse battery staple", enc)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = h.Verify(ctx, "correct horse battery stapl", enc)
	require.NoError(t, err)
	require.False(t, ok)

	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		// A key longer than any we write would have argon2 produce that much output.
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("a2V5", 22)} {
		_, err = h.Verify(ctx, "x", bad)
		require.ErrorIs(t, err, ErrMalformedHash)
	}
	require.NoError(t, h.VerifyDummy(ctx, "whatever"))
}

func TestOWASPParams(t *testing.T) {
	t.Parallel()
	h, err := NewHasher(t.Context(), OWASP, 1)
	require.NoError(t, err)
	enc, err := h.Hash(context.Background(), "a reasonably long passphrase")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$"), enc)
	require.False(t, h.NeedsRehash(enc))

	weak, err := NewHasher(t.Context(), cheap, 1)
	require.NoError(t, err)
	old, err := weak.Hash(context.Background(), "x")
	require.NoError(t, err)
	require.True(t, h.NeedsRehash(old))
}

func TestHashingIsBounded(t *testing.T) {
	t.Parallel()
	h, err := NewHasher(t.Context(), cheap, 1)
	require.NoError(t, err)
	// Hold the only worker: a hash must wait, and give up with its context.
	release := holdWorker(t, h.workers)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = h.Hash(ctx, "password")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	release()
	_, err = h.Hash(context.Background(), "password")
	require.NoError(t, err)
}

// TestHashingUnderConcurrency has many callers hash and verify at once through a few
// workers: each gets its own answer.
func TestHashingUnderConcurrency(t *testing.T) {
	t.Parallel()
	h, err := NewHasher(t.Context(), cheap, 3)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			pw := fmt.Sprintf("password number %d", i)
			// Errors are reported with t.Error: require's FailNow may not run off the
			// test's goroutine.
			enc, err := h.Hash(t.Context(), pw)
			if err != nil {
				t.Error(err)
				return
			}
			ok, err := h.Verify(t.Context(), pw, enc)
			if err != nil {
				t.Error(err)
			}
			assert.True(t, ok, pw)
			ok, err = h.Verify(t.Context(), pw+"!", enc)
			if err != nil {
				t.Error(err)
			}
			assert.False(t, ok, pw)
		})
	}
	wg.Wait()
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	p := NewPolicy()
	require.Greater(t, p.Len(), 2000)
	for pw, want := range map[string]error{
		"short":                  ErrTooShort,
		strings.Repeat("x", 129): ErrTooLong,
		"Password123":            ErrCommon,
		"QWERTYUIOP":             ErrCommon,
		"sunshine2024":           ErrCommon,
		"me@example.com":         ErrIsEmail,
		"tr0ub4dor&3-horse":      nil,
		strings.Repeat("é", 8):   nil,
		strings.Repeat("x", 128): nil,
	} {
		require.ErrorIs(t, p.Check(pw, "me@example.com"), want, pw)
		if want == nil {
			require.NoError(t, p.Check(pw, "me@example.com"), pw)
		}
	}
}
