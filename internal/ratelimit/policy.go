package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Policy names the [StaticPolicy] gives its limits; they label the
// decisions metric.
const (
	PolicyAnonymous     = "anonymous"
	PolicyAuthenticated = "authenticated"
	// PolicyWebhook is the budget of webhook deliveries (see [Subject.Webhook]).
	PolicyWebhook = "webhook"
)

// Subject is who makes a call, as far as the edge knows.
type Subject struct {
	// UserID is the signed-in user, if any.
	UserID string
	// APIKeyID is the API key the call presented, if any.
	APIKeyID string
	// IP is the client's address, used for anonymous calls.
	IP string
	// Target is the account a sign-in or email-sending call is aimed at, from
	// [EmailTarget] or [UserTarget]: such calls also spend a budget of their
	// target, so that many addresses cannot pile onto one account.
	Target string
	// Webhook marks a webhook delivery (rate_limit_webhook in the RPC's policy), counted
	// per address against a budget of its own, apart from the address's anonymous one.
	Webhook bool
}

// EmailTarget is the [Subject.Target] of a call naming an account by email. The
// address is hashed, so that Redis holds no email addresses, after trimming and
// folding case, so that "Ada@Example.com " and "ada@example.com" share one budget.
func EmailTarget(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "email:" + hex.EncodeToString(sum[:16])
}

// UserTarget is the [Subject.Target] of a call aimed at the signed-in user's own
// account.
func UserTarget(userID string) string { return "user:" + userID }

// Anonymous reports whether the call carries no principal. A subject with only a
// Target is anonymous: it is limited as an address is.
func (s Subject) Anonymous() bool { return s.UserID == "" && s.APIKeyID == "" }

// Key is the budget s's calls are counted against: "user:<id>", else
// "key:<id>", else "target:<target>", else "webhook:<address>" for a webhook
// delivery, else "ip:<address>". A user's API keys share the user's budget,
// so that minting keys does not multiply it. Calls whose address is unknown
// share the one budget "ip:".
func (s Subject) Key() string {
	switch {
	case s.UserID != "":
		return "user:" + s.UserID
	case s.APIKeyID != "":
		return "key:" + s.APIKeyID
	case s.Target != "":
		return "target:" + s.Target
	case s.Webhook:
		return "webhook:" + s.IP
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
// principal. A webhook delivery gets Authenticated, per address: its sender is
// authenticated, by the signature the service checks after admission.
func (p StaticPolicy) LimitFor(_ context.Context, subject Subject) (Limit, string, error) {
	if subject.Webhook && subject.Anonymous() {
		return p.Authenticated, PolicyWebhook, nil
	}
	if subject.Anonymous() {
		return p.Anonymous, PolicyAnonymous, nil
	}
	return p.Authenticated, PolicyAuthenticated, nil
}
