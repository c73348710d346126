package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limit is a budget: Rate units of cost per Period, of which up to Burst may
// be spent at once. Burst is also the RateLimit-Limit a caller is told.
type Limit struct {
	// Rate is how many units of cost refill per Period.
	Rate int
	// Period is the window Rate is counted over.
	Period time.Duration
	// Burst is the most a caller may spend at once, after being idle long
	// enough to refill.
	Burst int
}

// ErrCostExceedsBurst reports a call whose cost exceeds its limit's Burst: it
// could never be allowed, however long the caller waits, so there is no
// honest Retry-After to give. It points at a cost table or a limit to fix.
var ErrCostExceedsBurst = errors.New("ratelimit: cost exceeds the limit's burst")

// ParseLimit reads a limit written as "N/s", "N/m" or "N/h" (N units of cost
// per second, minute or hour, with a burst of N), optionally followed by
// ",burst=M" to allow a burst other than N, as in "600/m,burst=50".
func ParseLimit(s string) (Limit, error) {
	spec, burstPart, hasBurst := strings.Cut(strings.TrimSpace(s), ",")
	rateText, unit, ok := strings.Cut(strings.TrimSpace(spec), "/")
	if !ok {
		return Limit{}, fmt.Errorf("ratelimit: limit %q: want N/s, N/m or N/h, optionally followed by ,burst=M", s)
	}
	rate, err := strconv.Atoi(strings.TrimSpace(rateText))
	if err != nil || rate < 1 {
		return Limit{}, fmt.Errorf("ratelimit: limit %q: the rate %q is not a whole number of at least 1", s, strings.TrimSpace(rateText))
	}
	l := Limit{Rate: rate, Burst: rate}
	switch strings.TrimSpace(unit) {
	case "s":
		l.Period = time.Second
	case "m":
		l.Period = time.Minute
	case "h":
		l.Period = time.Hour
	default:
		return Limit{}, fmt.Errorf("ratelimit: limit %q: the unit %q is not s, m or h", s, strings.TrimSpace(unit))
	}
	if hasBurst {
		name, value, ok := strings.Cut(strings.TrimSpace(burstPart), "=")
		if !ok || strings.TrimSpace(name) != "burst" {
			return Limit{}, fmt.Errorf("ratelimit: limit %q: after the comma, want burst=M", s)
		}
		burst, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || burst < 1 {
			return Limit{}, fmt.Errorf("ratelimit: limit %q: the burst %q is not a whole number of at least 1", s, strings.TrimSpace(value))
		}
		l.Burst = burst
	}
	if err := l.validate(); err != nil {
		return Limit{}, err
	}
	return l, nil
}

// String writes l the way ParseLimit reads it (periods other than a second,
// a minute or an hour are written as Go durations, which ParseLimit refuses).
func (l Limit) String() string {
	unit := l.Period.String()
	switch l.Period {
	case time.Second:
		unit = "s"
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	if l.Burst == l.Rate {
		return fmt.Sprintf("%d/%s", l.Rate, unit)
	}
	return fmt.Sprintf("%d/%s,burst=%d", l.Rate, unit, l.Burst)
}

// maxRefill is the longest a burst may take to refill. Longer is surely a
// mistake, and the bound keeps every time the Lua script handles below 2^53
// microseconds, where its doubles stop being exact.
const maxRefill = 366 * 24 * time.Hour

// validate rejects limits the arithmetic cannot honour. Both limiters count in
// whole microseconds (Redis's clock resolution), so one unit of cost must take
// at least a microsecond to refill.
func (l Limit) validate() error {
	switch {
	case l.Rate < 1 || l.Burst < 1 || l.Period <= 0:
		return fmt.Errorf("ratelimit: limit %s: Rate, Burst and Period must be positive", l)
	case l.Period/time.Duration(l.Rate) < time.Microsecond:
		return fmt.Errorf("ratelimit: limit %s: more than one unit per microsecond is not supported", l)
	case float64(l.Period)/float64(l.Rate)*float64(l.Burst) > float64(maxRefill):
		return fmt.Errorf("ratelimit: limit %s: the burst would take more than a year to refill", l)
	}
	return nil
}
