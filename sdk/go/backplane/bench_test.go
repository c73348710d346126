package backplane_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/sdk/go/backplane"
)

// BenchmarkOverheadVsBareClient measures what the SDK adds to a call: GetCurrentUser
// through the SDK against the bare generated client on its own connection, with the
// same access token already in its context, on the shared `backplane dev`. The two
// alternate call by call, so the shared machine's noise falls on both alike; the
// figure is the ratio of their medians (and of their means).
func BenchmarkOverheadVsBareClient(b *testing.B) {
	ctx := b.Context()
	store := &backplane.MemoryStore{}
	sdk, err := backplane.New(target, backplane.WithPlaintext(), backplane.WithTokenStore(store))
	require.NoError(b, err)
	b.Cleanup(func() { _ = sdk.Close() })
	email := newEmail()
	_, err = sdk.SignUp(ctx, &authv1.SignUpRequest{Email: email, Password: password, DisplayName: "Bench"})
	require.NoError(b, err)
	if _, err := sdk.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{}); err != nil {
		_, err = sdk.SignIn(ctx, email, password)
		require.NoError(b, err)
	}
	tokens, err := store.Load(ctx)
	require.NoError(b, err)

	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close() })
	bare := authv1.NewAuthServiceClient(conn)
	bareCtx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tokens.AccessToken)

	req := &authv1.GetCurrentUserRequest{}
	viaBare := func() error { _, err := bare.GetCurrentUser(bareCtx, req); return err }
	viaSDK := func() error { _, err := sdk.Auth.GetCurrentUser(ctx, req); return err }
	for range 200 { // warm both connections and the server's caches
		require.NoError(b, viaBare())
		require.NoError(b, viaSDK())
	}

	var bareTimes, sdkTimes []time.Duration
	timed := func(call func() error, into *[]time.Duration) {
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		*into = append(*into, time.Since(start))
	}
	for i := 0; b.Loop(); i++ {
		// Alternate which goes first, so neither always follows the other's cache misses.
		if i%2 == 0 {
			timed(viaBare, &bareTimes)
			timed(viaSDK, &sdkTimes)
		} else {
			timed(viaSDK, &sdkTimes)
			timed(viaBare, &bareTimes)
		}
	}
	bareMed, sdkMed := median(bareTimes), median(sdkTimes)
	bareMean, sdkMean := mean(bareTimes), mean(sdkTimes)
	b.ReportMetric(float64(bareMed.Microseconds()), "bare-p50-µs")
	b.ReportMetric(float64(sdkMed.Microseconds()), "sdk-p50-µs")
	b.ReportMetric(float64(sdkMed)/float64(bareMed), "p50-ratio")
	b.ReportMetric(float64(sdkMean)/float64(bareMean), "mean-ratio")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}
