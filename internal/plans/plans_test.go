package plans_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/plans"
)

func TestTheBuiltInCatalogue(t *testing.T) {
	t.Parallel()
	c, err := plans.Parse("default.yaml", plans.DefaultYAML())
	require.NoError(t, err)
	require.Equal(t, "built-in", plans.Default().Source())

	var ids []string
	for _, p := range c.Plans() {
		ids = append(ids, p.ID)
	}
	require.Equal(t, []string{"free", "pro_yearly", "pro_monthly", "team_monthly"}, ids, "cheapest first, by monthly price")

	free := c.Free()
	require.Equal(t, "free", free.ID)
	require.True(t, free.Free())
	storage, limited := free.Quota("storage_bytes")
	require.True(t, limited)
	require.GreaterOrEqual(t, storage, int64(1<<30), "a small team can start on the free plan: at least 1 GiB")

	pro, ok := c.PlanByLookupKey("backplane_pro_monthly")
	require.True(t, ok)
	require.Equal(t, "pro_monthly", pro.ID)
	require.Equal(t, plans.Price{LookupKey: "backplane_pro_monthly", Amount: 2000, Currency: "usd", Interval: plans.Month}, *pro.Price)
	require.Equal(t, 14, pro.TrialDays)
	require.True(t, pro.HasFeature("custom_domains"))
	require.False(t, free.HasFeature("custom_domains"))
	require.Positive(t, pro.MaxUploadBytes)

	yearly, ok := c.Plan("pro_yearly")
	require.True(t, ok)
	require.Equal(t, plans.Year, yearly.Price.Interval)
	require.Equal(t, int64(1667), yearly.Price.MonthlyAmount(), "20000 a year, rounded per month")
	_, ok = c.Plan("team_monthly")
	require.True(t, ok)
	_, ok = c.Plan("gold")
	require.False(t, ok)

	require.Equal(t, []plans.Meter{
		{Name: "api_calls", DisplayName: "API calls", Unit: "calls", Aggregation: plans.Sum},
		{Name: "storage_bytes", DisplayName: "Storage", Unit: "bytes", Aggregation: plans.Max},
		{Name: "emails_sent", DisplayName: "Emails sent", Unit: "emails", Aggregation: plans.Count},
	}, c.Meters())
	m, ok := c.Meter("storage_bytes")
	require.True(t, ok)
	require.Equal(t, plans.Max, m.Aggregation)
	_, ok = c.Meter("bananas")
	require.False(t, ok)
	for _, p := range c.Plans() {
		for _, meter := range c.Meters() {
			_, limited := p.Quota(meter.Name)
			require.True(t, limited, "the built-in %s limits %s", p.ID, meter.Name)
		}
	}
}

func TestAPlanWithoutALimitIsUnlimited(t *testing.T) {
	t.Parallel()
	c, err := plans.Parse("c.yaml", []byte(`
meters: [{name: api_calls, display_name: Calls, aggregation: sum}]
plans:
  - {id: free, display_name: Free, rate_limit_per_minute: 60, quota_limits: {api_calls: 0}}
  - id: unlimited
    display_name: Unlimited
    rate_limit_per_minute: 600
    price: {lookup_key: u, amount: 100, currency: eur, interval: year}
`))
	require.NoError(t, err)
	u, _ := c.Plan("unlimited")
	_, limited := u.Quota("api_calls")
	require.False(t, limited)
	limit, limited := c.Free().Quota("api_calls")
	require.True(t, limited)
	require.Zero(t, limit, "0 forbids the meter")
	m, _ := c.Meter("api_calls")
	require.Equal(t, plans.Sum, m.Aggregation, "aggregations are case-insensitive")
}

func TestAMeteredPriceNamesItsMeter(t *testing.T) {
	t.Parallel()
	c, err := plans.Parse("c.yaml", []byte(`
meters: [{name: api_calls, display_name: Calls, aggregation: SUM}]
plans:
  - {id: free, display_name: Free, rate_limit_per_minute: 60}
  - id: payg
    display_name: Pay as you go
    rate_limit_per_minute: 600
    price: {lookup_key: payg, amount: 1, currency: usd, interval: month, meter: api_calls}
`))
	require.NoError(t, err)
	payg, _ := c.Plan("payg")
	require.True(t, payg.Price.Metered())
	require.Equal(t, "api_calls", payg.Price.Meter)
	pro, _ := plans.Default().Plan("pro_monthly")
	require.False(t, pro.Price.Metered(), "the built-in prices are flat")
}

// Every mistake names the file, the plan (or meter) and the field.
func TestBadCataloguesNameFilePlanAndField(t *testing.T) {
	t.Parallel()
	const meters = "meters: [{name: api_calls, display_name: Calls, aggregation: SUM}]\n"
	const free = "  - {id: free, display_name: Free, rate_limit_per_minute: 60}\n"
	for name, tc := range map[string]struct {
		yaml string
		want []string
	}{
		"unknown field": {meters + "plans:\n" + free + "  - {id: pro, display_name: Pro, rate_limit_per_minute: 1, price: {lookup_key: p, amount: 1, currency: usd, interval: month}, quota_limit: {}}\n",
			[]string{`plan "pro": quota_limit: unknown field`, "line 4"}},
		"unknown meter": {meters + "plans:\n  - {id: free, display_name: Free, rate_limit_per_minute: 60, quota_limits: {bogus: 5}}\n",
			[]string{`plan "free": quota_limits.bogus: no meter of this name`}},
		"negative quota": {meters + "plans:\n  - {id: free, display_name: Free, rate_limit_per_minute: 60, quota_limits: {api_calls: -1}}\n",
			[]string{`plan "free": quota_limits.api_calls: want 0`}},
		"no free plan": {meters + "plans:\n  - {id: pro, display_name: Pro, rate_limit_per_minute: 1, price: {lookup_key: p, amount: 1, currency: usd, interval: month}}\n",
			[]string{"plans: exactly one plan must be free", "found 0"}},
		"two free plans": {meters + "plans:\n" + free + "  - {id: other, display_name: Other, rate_limit_per_minute: 1}\n",
			[]string{"found 2: free, other"}},
		"bad price": {meters + "plans:\n" + free + "  - {id: pro, display_name: Pro, rate_limit_per_minute: 1, price: {lookup_key: p, amount: 0, currency: USD, interval: week}}\n",
			[]string{`plan "pro": price.amount: want at least 1`, `plan "pro": price.currency`, `plan "pro": price.interval: want month or year`}},
		"metered by an unknown meter": {meters + "plans:\n" + free + "  - {id: pro, display_name: Pro, rate_limit_per_minute: 1, price: {lookup_key: p, amount: 1, currency: usd, interval: month, meter: bogus}}\n",
			[]string{`plan "pro": price.meter: no meter of this name`}},
		"wrong type": {meters + "plans:\n  - {id: free, display_name: Free, rate_limit_per_minute: lots}\n",
			[]string{`plan "free": rate_limit_per_minute: want a whole number`}},
		"rate limit finer than the limiter": {meters + "plans:\n  - {id: free, display_name: Free, rate_limit_per_minute: 60000001}\n",
			[]string{`plan "free": rate_limit_per_minute: at most 60000000`}},
		"missing rate limit": {meters + "plans:\n  - {id: free, display_name: Free}\n",
			[]string{`plan "free": rate_limit_per_minute: required`}},
		"bad id": {meters + "plans:\n  - {id: Free!, display_name: Free, rate_limit_per_minute: 1}\n",
			[]string{`plan "plans[0]": id: want lower-case`}},
		"duplicate id and lookup key": {meters + "plans:\n" + free +
			"  - {id: pro, display_name: Pro, rate_limit_per_minute: 1, price: {lookup_key: p, amount: 1, currency: usd, interval: month}}\n" +
			"  - {id: pro, display_name: Pro 2, rate_limit_per_minute: 1, price: {lookup_key: p, amount: 2, currency: usd, interval: month}}\n",
			[]string{`plan "pro": id: another plan has this id`, `plan "pro": price.lookup_key: plan pro sells the same lookup_key`}},
		"trial on the free plan": {meters + "plans:\n  - {id: free, display_name: Free, rate_limit_per_minute: 1, trial_days: 7}\n",
			[]string{`plan "free": trial_days: the free plan has no trial`}},
		"bad feature": {meters + "plans:\n  - {id: free, display_name: Free, rate_limit_per_minute: 1, features: [SSO, sso, sso]}\n",
			[]string{`plan "free": features: "SSO"`, `"sso" is listed twice`}},
		"bad meter": {"meters: [{name: api_calls, display_name: Calls, aggregation: AVG}, {name: api_calls, display_name: ''}]\nplans:\n" + free,
			[]string{`meter "api_calls": aggregation: want SUM, MAX or COUNT`, `meter "api_calls": name: another meter`, `meter "api_calls": display_name: required`}},
		"no plans":     {meters, []string{"plans: at least one plan is required"}},
		"not yaml":     {"plans: [", []string{"not valid YAML"}},
		"empty":        {"", []string{"the file is empty"}},
		"unknown root": {"plan: []\n", []string{"plan: unknown field; want one of meters, plans"}},
	} {
		_, err := plans.Parse("catalog.yaml", []byte(tc.yaml))
		require.Error(t, err, name)
		require.True(t, strings.HasPrefix(err.Error(), "catalog.yaml: "), "%s: %v", name, err)
		for _, w := range tc.want {
			require.Contains(t, err.Error(), w, name)
		}
		var perr *plans.Error
		require.ErrorAs(t, err, &perr, name)
		require.NotEmpty(t, perr.Problems, name)
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte("plans: [{id: solo, display_name: Solo, rate_limit_per_minute: 5}]\n"), 0o600))
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("plans: [{id: solo, display_name: Solo, rate_limit_per_minute: 0}]\n"), 0o600))
	envOf := func(path string) *config.Env {
		return config.NewEnv(func(k string) string {
			if k == plans.FileVariable {
				return path
			}
			return ""
		})
	}

	env := envOf("")
	require.Same(t, plans.Default(), plans.FromEnv(env))
	require.NoError(t, env.Err())

	env = envOf(good)
	c := plans.FromEnv(env)
	require.NoError(t, env.Err())
	require.Equal(t, good, c.Source())
	require.Equal(t, "solo", c.Free().ID)
	require.Empty(t, c.Meters())

	env = envOf(bad)
	plans.FromEnv(env)
	require.ErrorContains(t, env.Err(), "BACKPLANE_CATALOG_FILE: "+bad+`: plan "solo": rate_limit_per_minute: required, at least 1`)

	env = envOf(filepath.Join(dir, "missing.yaml"))
	plans.FromEnv(env)
	require.ErrorContains(t, env.Err(), "BACKPLANE_CATALOG_FILE: "+filepath.Join(dir, "missing.yaml"))
}

func TestCalendarMonth(t *testing.T) {
	t.Parallel()
	tokyo := time.FixedZone("JST", 9*3600)
	// 1 January 08:00 in Tokyo is still 31 December in UTC.
	start, end := plans.CalendarMonth(time.Date(2025, 1, 1, 8, 0, 0, 0, tokyo))
	require.Equal(t, time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), start)
	require.Equal(t, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), end)
	start, end = plans.CalendarMonth(time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC))
	require.Equal(t, time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), start)
	require.Equal(t, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), end)
}
