package gateway

import "github.com/backplane/backplane/internal/ratelimit"

// webhookSubjects are the budgets of a webhook delivery (rate_limit_webhook): one of its
// own per client address, not the address's anonymous budget. Stripe and SendGrid send
// bursts of events from a few addresses, which the anonymous budget would refuse (and
// which would leave nothing of it to other anonymous callers behind those addresses);
// the budget still bounds a forger, whose every call the service refuses after one HMAC.
// Whatever credential comes with a delivery is ignored: the sender's signature is its
// credential.
func webhookSubjects(caller ratelimit.Subject) []ratelimit.Subject {
	return []ratelimit.Subject{{IP: caller.IP, Webhook: true}}
}
