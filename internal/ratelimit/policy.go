package ratelimit

import "context"

// Policy names the [StaticPolicy] gives its two limits; they label the
// decisions metric.
const (
	PolicyAnonymous     = "anonymous"
	PolicyAuthenticated = "authenticated"
)

// Subject is who makes a call, as far as the edge knows.
type Subject struct {
	// UserID is the signed-in user, if any.
	UserID string
	// APIKeyID is the API key the call presented, if any.
	APIKeyID string
	// IP is the client's address, used for anonymous calls.
	IP string
}

// Anonymous reports whether the call carries no principal.
func (s Subject) Anonymous() bool { return s.UserID == "" && s.APIKeyID == "" }

// Key is the budget s's calls are counted against: "user:<id>", else
// "key:<id>", else "ip:<address>". A user's API keys share the user's budget,
// so that minting keys does not multiply it. Calls whose address is unknown
// share the one budget "ip:".
func (s Subject) Key() string {
	switch {
	case s.UserID != "":
		return "user:" + s.UserID
	case s.APIKeyID != "":
		return "key:" + s.APIKeyID
	default:
		return "ip:" + s.IP
	}
}

// Policy chooses the limit that applies to a subject and names it for the
// metrics. It is an interface because limits will come from the caller's
// subscription plan; [StaticPolicy] serves until then.
type Policy interface {
	// LimitFor returns the limit for subject and the policy's name.
	LimitFor(ctx context.Context, subject Subject) (Limit, string, error)
}

// StaticPolicy applies one configured limit to anonymous calls and another to
// every authenticated one.
type StaticPolicy struct {
	// Anonymous applies to calls without a principal, per client IP
	// (BACKPLANE_RATE_LIMIT_ANONYMOUS).
	Anonymous Limit
	// Authenticated applies per user or API key
	// (BACKPLANE_RATE_LIMIT_AUTHENTICATED).
	Authenticated Limit
}

var _ Policy = StaticPolicy{}

// LimitFor returns Anonymous or Authenticated, by whether subject has a
// principal.
func (p StaticPolicy) LimitFor(_ context.Context, subject Subject) (Limit, string, error) {
	if subject.Anonymous() {
		return p.Anonymous, PolicyAnonymous, nil
	}
	return p.Authenticated, PolicyAuthenticated, nil
}
