package auth

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// flakyNotifier answers the codes it is given, one per call, then succeeds.
type flakyNotifier struct {
	mu      sync.Mutex
	answers []codes.Code
	calls   int
}

func (f *flakyNotifier) Send(context.Context, securityEmail) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.answers) == 0 {
		return nil
	}
	c := f.answers[0]
	f.answers = f.answers[1:]
	return status.Error(c, "as told")
}

func TestSendRetryingOutlastsAShortOutage(t *testing.T) {
	t.Parallel()
	n := &flakyNotifier{answers: []codes.Code{codes.Unavailable, codes.Unavailable}}
	require.NoError(t, sendRetrying(t.Context(), n, securityEmail{IdempotencyKey: "k"}))
	require.Equal(t, 3, n.calls, "two outages, then handed over")
}

func TestSendRetryingGivesUpOnOtherErrorsAndWhenTimeRunsOut(t *testing.T) {
	t.Parallel()
	n := &flakyNotifier{answers: []codes.Code{codes.InvalidArgument}}
	require.Equal(t, codes.InvalidArgument, status.Code(sendRetrying(t.Context(), n, securityEmail{})))
	require.Equal(t, 1, n.calls, "only UNAVAILABLE is worth another attempt")

	down := &flakyNotifier{answers: []codes.Code{codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable}}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	require.Equal(t, codes.Unavailable, status.Code(sendRetrying(ctx, down, securityEmail{})))
	require.Less(t, down.calls, 5, "it stops when its time is up")
}
