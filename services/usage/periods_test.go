package usage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func day(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }

func TestPeriodsRepeatOnTheBillingAnchor(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		anchor period
		at     time.Time
		want   period
	}{
		"inside the anchor": {
			period{day(2025, 3, 10, 8), day(2025, 4, 10, 8)}, day(2025, 3, 20, 0),
			period{day(2025, 3, 10, 8), day(2025, 4, 10, 8)}},
		"the next month, before the renewal was heard of": {
			period{day(2025, 3, 10, 8), day(2025, 4, 10, 8)}, day(2025, 4, 10, 8),
			period{day(2025, 4, 10, 8), day(2025, 5, 10, 8)}},
		"the month before, for late events": {
			period{day(2025, 3, 10, 8), day(2025, 4, 10, 8)}, day(2025, 3, 10, 7),
			period{day(2025, 2, 10, 8), day(2025, 3, 10, 8)}},
		"two months back": {
			period{day(2025, 3, 10, 8), day(2025, 4, 10, 8)}, day(2025, 1, 11, 0),
			period{day(2025, 1, 10, 8), day(2025, 2, 10, 8)}},
		"the 31st clamps to February and comes back in March": {
			period{day(2025, 1, 31, 0), day(2025, 2, 28, 0)}, day(2025, 3, 15, 0),
			period{day(2025, 2, 28, 0), day(2025, 3, 31, 0)}},
		"from a clamped anchor": {
			period{day(2025, 2, 28, 0), day(2025, 3, 31, 0)}, day(2025, 4, 30, 12),
			period{day(2025, 4, 30, 0), day(2025, 5, 31, 0)}},
		"yearly": {
			period{day(2024, 6, 1, 0), day(2025, 6, 1, 0)}, day(2025, 6, 2, 0),
			period{day(2025, 6, 1, 0), day(2026, 6, 1, 0)}},
		"yearly, a leap day": {
			period{day(2024, 2, 29, 0), day(2025, 2, 28, 0)}, day(2024, 1, 1, 0),
			period{day(2023, 2, 28, 0), day(2024, 2, 29, 0)}},
		"a trial of 14 days repeats its length": {
			period{day(2025, 3, 1, 0), day(2025, 3, 15, 0)}, day(2025, 3, 30, 0),
			period{day(2025, 3, 29, 0), day(2025, 4, 12, 0)}},
		"and before it": {
			period{day(2025, 3, 1, 0), day(2025, 3, 15, 0)}, day(2025, 2, 28, 0),
			period{day(2025, 2, 15, 0), day(2025, 3, 1, 0)}},
	} {
		got := periodAt(tc.anchor, tc.at)
		require.Equal(t, tc.want, got, name)
		require.True(t, got.contains(tc.at), name)
	}
}

func TestTheFreePlansPeriodIsTheCalendarMonthInUTC(t *testing.T) {
	t.Parallel()
	p := calendarMonth(time.Date(2025, 3, 31, 23, 30, 0, 0, time.FixedZone("-02", -2*3600)))
	require.Equal(t, period{day(2025, 4, 1, 0), day(2025, 5, 1, 0)}, p, "01:30 UTC on 1 April")
}
