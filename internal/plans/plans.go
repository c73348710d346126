// Package plans is Backplane's catalogue: the plans a deployment sells and the usage
// meters they limit. The operator owns it as one YAML file (BACKPLANE_CATALOG_FILE);
// without one, the built-in catalogue in default.yaml applies. It is read and checked
// once, at start, by every service that needs it: the subscription service sells the
// plans and answers entitlements from them, the usage service counts the meters and
// enforces each plan's quota_limits, and the asset service reads the plans' upload
// limits.
//
// A catalogue is immutable once loaded, so it is shared freely between goroutines.
//
// The file has two sections:
//
//	meters:
//	  - name: api_calls          # [a-z][a-z0-9_]*, unique
//	    display_name: API calls  # required
//	    unit: calls              # optional, for display
//	    aggregation: SUM         # SUM, MAX or COUNT
//	plans:
//	  - id: pro_monthly          # [a-z][a-z0-9_-]*, at most 63 characters, unique
//	    display_name: Pro        # required
//	    description: …           # optional
//	    price:                   # absent on exactly one plan: the free plan
//	      lookup_key: backplane_pro_monthly  # the Stripe price's lookup_key, unique
//	      amount: 2000           # minor units (cents), at least 1
//	      currency: usd          # ISO 4217, lower-case
//	      interval: month        # month or year
//	      meter: api_calls       # optional: a metered price, billed per unit of this meter
//	    features: [custom_domains]            # [a-z][a-z0-9_]*, no repeats
//	    quota_limits: {api_calls: 2000000}    # per meter and billing period; absent = unlimited, 0 forbids
//	    rate_limit_per_minute: 3000           # 1 to 60000000
//	    trial_days: 14                        # 0 to 730; 0 on the free plan
//	    max_upload_bytes: 2147483648          # 0 = the asset service's own limit
//
// Unknown fields are errors, so that a misspelt limit is never silently unlimited.
package plans

import (
	"cmp"
	"slices"
	"time"
)

// Interval is how often a paid plan is charged.
type Interval string

// The intervals a plan may be charged at, as Stripe writes them.
const (
	Month Interval = "month"
	Year  Interval = "year"
)

// Aggregation is how a meter turns a period's events into one figure.
type Aggregation string

// The aggregations a meter may use.
const (
	// Sum adds up the events' quantities (API calls, emails).
	Sum Aggregation = "SUM"
	// Max keeps the largest quantity reported (storage in use).
	Max Aggregation = "MAX"
	// Count counts events, whatever their quantity.
	Count Aggregation = "COUNT"
)

// Meter is one kind of usage that is counted per user and billing period.
type Meter struct {
	// Name identifies the meter in quota_limits and in usage calls ("api_calls").
	Name string
	// DisplayName is shown to people ("API calls").
	DisplayName string
	// Unit names what is counted, for display ("calls", "bytes"); may be empty.
	Unit string
	// Aggregation is how the period's events add up.
	Aggregation Aggregation
}

// Price is the Stripe price a paid plan sells.
type Price struct {
	// LookupKey names the price in Stripe; `backplane stripe sync` moves it to a new
	// price whenever the amount changes, since Stripe prices are immutable.
	LookupKey string
	// Amount is what one interval costs, in the currency's minor units.
	Amount int64
	// Currency is the ISO 4217 code, lower-case ("usd").
	Currency string
	// Interval is how often Amount is charged.
	Interval Interval
	// Meter, when set, makes the price metered: Amount is charged per unit of the
	// meter's total in each billing period, which the usage service reports to Stripe
	// (the Stripe price has recurring.usage_type=metered and
	// aggregate_usage=last_during_period, since each report sets the period's total).
	// Empty for a flat price.
	Meter string
}

// Metered reports whether the price bills a meter's period total rather than a flat
// amount.
func (p Price) Metered() bool { return p.Meter != "" }

// MonthlyAmount is Amount per month, rounded to the nearest minor unit, for comparing
// monthly and yearly prices.
func (p Price) MonthlyAmount() int64 {
	if p.Interval == Year {
		return (p.Amount + 6) / 12
	}
	return p.Amount
}

// Plan is one offer in the catalogue, and what it entitles its subscribers to.
type Plan struct {
	// ID is the plan's stable slug ("pro_monthly").
	ID string
	// DisplayName and Description are shown on pricing pages.
	DisplayName string
	Description string
	// Price is what the plan costs; nil for the free plan.
	Price *Price
	// Features are the flags the plan unlocks, such as "custom_domains".
	Features []string
	// QuotaLimits is the most each meter may count in one billing period. A meter
	// absent from the map is unlimited; a limit of 0 forbids it. Use Quota to read it.
	QuotaLimits map[string]int64
	// RateLimitPerMinute is how many units of rate limit the plan's users may spend per
	// minute at the edge.
	RateLimitPerMinute int
	// TrialDays is the free trial a first subscription to the plan starts with.
	TrialDays int
	// MaxUploadBytes is the largest file a subscriber may upload; 0 leaves it to the
	// asset service's own limit.
	MaxUploadBytes int64
}

// Free reports whether the plan is the catalogue's free plan (it has no price).
func (p Plan) Free() bool { return p.Price == nil }

// Quota returns the plan's limit for meter in one billing period, and whether there is
// one: a meter the plan does not limit is unlimited.
func (p Plan) Quota(meter string) (limit int64, limited bool) {
	limit, limited = p.QuotaLimits[meter]
	return limit, limited
}

// HasFeature reports whether the plan unlocks feature.
func (p Plan) HasFeature(feature string) bool { return slices.Contains(p.Features, feature) }

// Catalog is a validated catalogue. Build it with Default, Load or Parse.
type Catalog struct {
	source string
	plans  []Plan // cheapest first
	meters []Meter
	byID   map[string]int
	byKey  map[string]int // price lookup key → plan
	meter  map[string]int
	free   int
}

// newCatalog indexes plans and meters that have passed validation.
func newCatalog(source string, plans []Plan, meters []Meter) *Catalog {
	// Cheapest first by monthly price, the free plan leading; ties keep the file's order.
	slices.SortStableFunc(plans, func(a, b Plan) int {
		return cmp.Compare(monthly(a), monthly(b))
	})
	c := &Catalog{
		source: source, plans: plans, meters: meters,
		byID: map[string]int{}, byKey: map[string]int{}, meter: map[string]int{},
	}
	for i, p := range plans {
		c.byID[p.ID] = i
		if p.Price == nil {
			c.free = i
		} else {
			c.byKey[p.Price.LookupKey] = i
		}
	}
	for i, m := range meters {
		c.meter[m.Name] = i
	}
	return c
}

func monthly(p Plan) int64 {
	if p.Price == nil {
		return 0
	}
	return p.Price.MonthlyAmount()
}

// Source is where the catalogue came from: a file's path, or "built-in".
func (c *Catalog) Source() string { return c.source }

// Plans returns every plan, cheapest first (by monthly price; the free plan first).
// The slice is a copy; the plans' maps and slices are shared and must not be changed.
func (c *Catalog) Plans() []Plan { return slices.Clone(c.plans) }

// Plan returns the plan with id.
func (c *Catalog) Plan(id string) (Plan, bool) {
	i, ok := c.byID[id]
	if !ok {
		return Plan{}, false
	}
	return c.plans[i], true
}

// PlanByLookupKey returns the paid plan selling the Stripe price with lookupKey.
func (c *Catalog) PlanByLookupKey(lookupKey string) (Plan, bool) {
	i, ok := c.byKey[lookupKey]
	if !ok {
		return Plan{}, false
	}
	return c.plans[i], true
}

// Free returns the free plan, which every user without a paid subscription is on.
func (c *Catalog) Free() Plan { return c.plans[c.free] }

// Meters returns every meter, in the file's order.
func (c *Catalog) Meters() []Meter { return slices.Clone(c.meters) }

// Meter returns the meter named name.
func (c *Catalog) Meter(name string) (Meter, bool) {
	i, ok := c.meter[name]
	if !ok {
		return Meter{}, false
	}
	return c.meters[i], true
}

// CalendarMonth returns the calendar month in UTC holding t, [start, end): the billing
// period of users on the free plan.
func CalendarMonth(t time.Time) (start, end time.Time) {
	t = t.UTC()
	start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}

// ChangesChannel is the Redis pub/sub channel on which the subscription service
// publishes the id of every user whose entitlements just changed (a new plan, a lapse),
// after the change is committed. Whoever caches entitlements (the edge's rate limits,
// the usage service's quotas) drops that user's entry on each message, so a change is
// felt within a second, and drops every entry when its subscription to the channel is
// re-established, since messages sent meanwhile were lost.
const ChangesChannel = "backplane:entitlements:changed"
