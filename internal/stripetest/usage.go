package stripetest

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"

	"github.com/stripe/stripe-go/v76"
)

// Usage records: the fake keeps every record reported for a subscription item, as
// Stripe does, and Stripe's invoice bills the one with the latest timestamp
// (aggregate_usage=last_during_period) when the action is set.

var pathUsageRecords = regexp.MustCompile(`^/v1/subscription_items/([^/]+)/usage_records$`)

// routeUsage serves the usage-record endpoints; ok is false for other requests. f.mu is
// held.
func (f *Fake) routeUsage(r *http.Request) (status int, body any, ok bool) {
	if r.Method != http.MethodPost || !pathUsageRecords.MatchString(r.URL.Path) {
		return 0, nil, false
	}
	item := pathUsageRecords.FindStringSubmatch(r.URL.Path)[1]
	quantity, err := strconv.ParseInt(r.Form.Get("quantity"), 10, 64)
	if err != nil {
		return http.StatusBadRequest, errorBody{map[string]string{"type": "invalid_request_error", "message": "quantity: " + err.Error()}}, true
	}
	ts, err := strconv.ParseInt(r.Form.Get("timestamp"), 10, 64)
	if err != nil {
		ts = f.now().Unix()
	}
	if a := r.Form.Get("action"); a != "" && a != stripe.UsageRecordActionSet && a != stripe.UsageRecordActionIncrement {
		return http.StatusBadRequest, errorBody{map[string]string{"type": "invalid_request_error", "message": "action: " + a}}, true
	}
	rec := &stripe.UsageRecord{ID: f.id("mbur"), Object: "usage_record", SubscriptionItem: item, Quantity: quantity, Timestamp: ts, Livemode: false}
	if f.usageRecords == nil {
		f.usageRecords = map[string][]*stripe.UsageRecord{}
	}
	f.usageRecords[item] = append(f.usageRecords[item], rec)
	return http.StatusOK, rec, true
}

// UsageRecords returns the usage records reported for a subscription item, in the order
// they came.
func (f *Fake) UsageRecords(item string) []*stripe.UsageRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.usageRecords[item])
}
