package ratelimit_test

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/backplane/backplane/internal/ratelimit"
)

func ExampleParseLimit() {
	l, err := ratelimit.ParseLimit("600/m,burst=50")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Rate, l.Period, l.Burst)

	_, err = ratelimit.ParseLimit("600/d")
	fmt.Println(err)
	// Output:
	// 600 1m0s 50
	// ratelimit: limit "600/d": the unit "d" is not s, m or h
}

func ExampleDecision_Headers() {
	refused := ratelimit.Decision{
		Allowed:    false,
		Limit:      50,
		Remaining:  0,
		ResetAfter: 4*time.Second + 900*time.Millisecond,
		RetryAfter: 100 * time.Millisecond,
	}
	h := refused.Headers()
	for _, name := range slices.Sorted(maps.Keys(h)) {
		fmt.Printf("%s: %s\n", name, h[name])
	}
	// Output:
	// ratelimit-limit: 50
	// ratelimit-remaining: 0
	// ratelimit-reset: 5
	// retry-after: 1
}
