package backplane_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// TestSignInGetsThroughStrangersGuesses: a client that signed in to an account before
// sends back its device token, so a stranger's wrong guesses, which throttle the
// account for everyone else at that address, do not lock it out.
func TestSignInGetsThroughStrangersGuesses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	email := signUp(t, newClient(t, target))
	owner := newClient(t, target)
	_, err := owner.SignIn(ctx, email, password)
	require.NoError(t, err)

	stranger := newClient(t, target)
	for range 5 { // the server's BACKPLANE_LOGIN_MAX_FAILURES
		_, err := stranger.SignIn(ctx, email, "a wrong guess")
		requireCode(t, codes.Unauthenticated, err)
	}
	_, err = stranger.SignIn(ctx, email, password)
	requireCode(t, codes.ResourceExhausted, err)

	_, err = owner.SignIn(ctx, email, password)
	require.NoError(t, err, "the owner's client is a known device")
}
