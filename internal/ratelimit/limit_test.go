package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Limit
		wantErr string
	}{
		{in: "10/s", want: Limit{Rate: 10, Period: time.Second, Burst: 10}},
		{in: "600/m", want: Limit{Rate: 600, Period: time.Minute, Burst: 600}},
		{in: "5000/h", want: Limit{Rate: 5000, Period: time.Hour, Burst: 5000}},
		{in: " 600 / m , burst = 50 ", want: Limit{Rate: 600, Period: time.Minute, Burst: 50}},
		{in: "1/h,burst=3", want: Limit{Rate: 1, Period: time.Hour, Burst: 3}},
		{in: "", wantErr: "want N/s, N/m or N/h"},
		{in: "100", wantErr: "want N/s, N/m or N/h"},
		{in: "x/s", wantErr: `the rate "x" is not a whole number`},
		{in: "0/s", wantErr: `the rate "0" is not a whole number of at least 1`},
		{in: "-5/s", wantErr: `the rate "-5"`},
		{in: "10/d", wantErr: `the unit "d" is not s, m or h`},
		{in: "10/", wantErr: `the unit "" is not s, m or h`},
		{in: "10/s,rate=5", wantErr: "after the comma, want burst=M"},
		{in: "10/s,burst", wantErr: "after the comma, want burst=M"},
		{in: "10/s,burst=0", wantErr: `the burst "0" is not a whole number of at least 1`},
		{in: "2000000/s", wantErr: "more than one unit per microsecond"},
		{in: "1/h,burst=10000", wantErr: "more than a year to refill"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseLimit(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestLimitStringRoundTrips(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"10/s", "600/m", "5000/h", "600/m,burst=50"} {
		l, err := ParseLimit(s)
		require.NoError(t, err)
		require.Equal(t, s, l.String())
	}
}

func TestNewGCRARejectsCalls(t *testing.T) {
	t.Parallel()
	l := Limit{Rate: 10, Period: time.Second, Burst: 5}

	_, err := newGCRA(l, 0)
	require.ErrorContains(t, err, "cost 0: must be at least 1")

	_, err = newGCRA(l, 6)
	require.ErrorIs(t, err, ErrCostExceedsBurst)

	_, err = newGCRA(Limit{Rate: 10, Period: time.Second}, 1)
	require.ErrorContains(t, err, "must be positive")

	g, err := newGCRA(Limit{Rate: 3, Period: time.Second, Burst: 2}, 2)
	require.NoError(t, err)
	require.Equal(t, gcra{interval: 333_333, tolerance: 666_666}, g)
}
