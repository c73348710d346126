package usage

import (
	"time"

	"github.com/backplane/backplane/internal/plans"
)

// period is a billing period, [start, end), in UTC.
type period struct {
	start, end time.Time
}

func (p period) contains(t time.Time) bool { return !t.Before(p.start) && t.Before(p.end) }

// calendarMonth is the period of users on the free plan: the calendar month in UTC
// holding t.
func calendarMonth(t time.Time) period {
	start, end := plans.CalendarMonth(t)
	return period{start: start, end: end}
}

// periodAt returns the period holding t in the series of periods that anchor belongs to.
//
// The subscription service knows only the period under way, but an event may be
// reported up to 35 days late (into the period before), or, near a renewal, after the
// period the service last heard of has ended (Stripe's renewal webhook not in yet).
// Periods of a subscription repeat on its billing anchor: every m months on the same
// day of the month, clamped to the month's length as Stripe does (the 31st renews on
// 28 February, then 31 March). An anchor that is not a whole number of months (a trial
// of 14 days, say) repeats with its own length.
func periodAt(anchor period, t time.Time) period {
	if anchor.contains(t) || !anchor.end.After(anchor.start) {
		return anchor
	}
	start, end := anchor.start.UTC(), anchor.end.UTC()
	if months, day, ok := monthly(start, end); ok {
		// k periods after the anchor: the estimate from calendar months is off by at
		// most one either way.
		k := monthsBetween(start, t.UTC()) / months
		if t.Before(start) && monthsBetween(start, t.UTC())%months != 0 {
			k--
		}
		for i := 0; i < 3; i++ {
			p := period{start: addMonths(start, k*months, day), end: addMonths(start, (k+1)*months, day)}
			switch {
			case t.Before(p.start):
				k--
			case !t.Before(p.end):
				k++
			default:
				return p
			}
		}
	}
	length := end.Sub(start)
	k := int64(t.Sub(start) / length)
	if t.Before(start) && t.Sub(start)%length != 0 {
		k--
	}
	return period{start: start.Add(time.Duration(k) * length), end: start.Add(time.Duration(k+1) * length)}
}

// monthly reports whether [start, end) is a whole number of months on one anchor day,
// and which: the anchor is the later of the two days, since only the shorter month
// clamps it.
func monthly(start, end time.Time) (months, day int, ok bool) {
	months = monthsBetween(start, end)
	if months < 1 {
		return 0, 0, false
	}
	day = max(start.Day(), end.Day())
	if !addMonths(start, months, day).Equal(end) || !addMonths(start, 0, day).Equal(start) {
		return 0, 0, false
	}
	return months, day, true
}

// monthsBetween counts the calendar months from a's month to b's.
func monthsBetween(a, b time.Time) int {
	return (b.Year()-a.Year())*12 + int(b.Month()) - int(a.Month())
}

// addMonths returns the time of day of from, n months after from's month, on day (or the
// month's last day when it is shorter).
func addMonths(from time.Time, n, day int) time.Time {
	first := time.Date(from.Year(), from.Month()+time.Month(n), 1, from.Hour(), from.Minute(), from.Second(), from.Nanosecond(), time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(day, last)-1)
}
