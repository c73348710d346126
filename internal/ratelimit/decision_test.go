package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDecisionHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    Decision
		want map[string]string
	}{
		{
			name: "allowed",
			d:    Decision{Allowed: true, Limit: 100, Remaining: 42, ResetAfter: 1500 * time.Millisecond},
			want: map[string]string{"ratelimit-limit": "100", "ratelimit-remaining": "42", "ratelimit-reset": "2"},
		},
		{
			name: "allowed when full",
			d:    Decision{Allowed: true, Limit: 1, Remaining: 0, ResetAfter: time.Second},
			want: map[string]string{"ratelimit-limit": "1", "ratelimit-remaining": "0", "ratelimit-reset": "1"},
		},
		{
			name: "limited",
			d:    Decision{Limit: 10, Remaining: 2, ResetAfter: 59*time.Second + time.Microsecond, RetryAfter: 12 * time.Second},
			want: map[string]string{"ratelimit-limit": "10", "ratelimit-remaining": "2", "ratelimit-reset": "60", "retry-after": "12"},
		},
		{
			name: "limited for less than a second",
			d:    Decision{Limit: 10, ResetAfter: 300 * time.Millisecond, RetryAfter: time.Microsecond},
			want: map[string]string{"ratelimit-limit": "10", "ratelimit-remaining": "0", "ratelimit-reset": "1", "retry-after": "1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.d.Headers())
		})
	}
}

func TestDecisionAppendHeaders(t *testing.T) {
	t.Parallel()
	d := Decision{Limit: 10, Remaining: -3, ResetAfter: 2 * time.Second, RetryAfter: 1500 * time.Millisecond}
	got := d.AppendHeaders([]string{"kept", "as is"})
	require.Equal(t, []string{
		"kept", "as is",
		"ratelimit-limit", "10", "ratelimit-remaining", "0", "ratelimit-reset", "2", "retry-after", "2",
	}, got, "pairs appended after what was there, in a fixed order")
}
