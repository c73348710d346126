package stripetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// Fake is a stateful stand-in for the part of Stripe's API Backplane uses: customers,
// products, prices, checkout and portal sessions, subscriptions and invoices. It keeps
// what it is told, answers re-fetches with the latest state, replays responses for a
// repeated idempotency key as Stripe does, and fails on request. Objects are stripe-go's
// own types, so what it answers decodes as Stripe's answers do.
type Fake struct {
	// URL is the base URL to give the client (BACKPLANE_STRIPE_API_BASE).
	URL string

	mu            sync.Mutex
	seq           int
	now           func() time.Time
	customers     map[string]*stripe.Customer
	products      map[string]*stripe.Product
	prices        map[string]*stripe.Price
	sessions      map[string]*stripe.CheckoutSession
	subscriptions map[string]*stripe.Subscription
	invoices      []*stripe.Invoice
	usageRecords  map[string][]*stripe.UsageRecord // by subscription item (usage.go)
	idempotent    map[string]recorded
	requests      []Request
	failures      []int // statuses of the next requests to fail, in order
}

// Request is one request the fake received.
type Request struct {
	Method, Path   string
	IdempotencyKey string
	Form           url.Values
}

type recorded struct {
	status int
	body   []byte
}

// NewFake starts a fake, stopped when the test ends.
func NewFake(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{
		now:           time.Now,
		customers:     map[string]*stripe.Customer{},
		products:      map[string]*stripe.Product{},
		prices:        map[string]*stripe.Price{},
		sessions:      map[string]*stripe.CheckoutSession{},
		subscriptions: map[string]*stripe.Subscription{},
		idempotent:    map[string]recorded{},
	}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// FailNext makes the next len(statuses) requests answer those HTTP statuses, in order,
// with Stripe's error body, before doing anything.
func (f *Fake) FailNext(statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, statuses...)
}

// Requests returns the requests received so far.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// Count returns how many requests matched method and a path starting with prefix.
func (f *Fake) Count(method, prefix string) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

// Customers returns every customer created.
func (f *Fake) Customers() []*stripe.Customer {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*stripe.Customer, 0, len(f.customers))
	for _, c := range f.customers {
		out = append(out, c)
	}
	return out
}

// AddPrice creates a product and an active recurring price for it, as `backplane stripe
// sync` would, and returns the price.
func (f *Fake) AddPrice(lookupKey string, amount int64, currency, interval string) *stripe.Price {
	f.mu.Lock()
	defer f.mu.Unlock()
	prod := &stripe.Product{ID: f.id("prod"), Name: lookupKey, Active: true}
	f.products[prod.ID] = prod
	return f.newPrice(prod.ID, lookupKey, amount, currency, interval)
}

func (f *Fake) newPrice(product, lookupKey string, amount int64, currency, interval string) *stripe.Price {
	p := &stripe.Price{
		ID: f.id("price"), Object: "price", Active: true, LookupKey: lookupKey, UnitAmount: amount,
		Currency: stripe.Currency(currency), Product: &stripe.Product{ID: product}, Type: stripe.PriceTypeRecurring,
		Recurring: &stripe.PriceRecurring{Interval: stripe.PriceRecurringInterval(interval), IntervalCount: 1, UsageType: stripe.PriceRecurringUsageTypeLicensed},
	}
	f.prices[p.ID] = p
	return p
}

// Prices returns every price, active or not.
func (f *Fake) Prices() []*stripe.Price {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*stripe.Price, 0, len(f.prices))
	for _, p := range f.prices {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Products returns every product.
func (f *Fake) Products() []*stripe.Product {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*stripe.Product, 0, len(f.products))
	for _, p := range f.products {
		out = append(out, p)
	}
	return out
}

// Session returns a checkout session.
func (f *Fake) Session(id string) *stripe.CheckoutSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[id]
}

// CompleteCheckout plays a buyer paying a checkout session: it creates the
// subscription the session sells (trialing when the session asked for a trial, else
// active) and marks the session complete. It returns the subscription.
func (f *Fake) CompleteCheckout(sessionID string) *stripe.Subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[sessionID]
	if s == nil {
		panic("stripetest: no checkout session " + sessionID)
	}
	price := f.prices[s.Metadata["fake_price"]]
	trial, _ := strconv.Atoi(s.Metadata["fake_trial_days"])
	sub := f.newSubscription(s.Customer.ID, price, trial, s.Metadata["fake_subscription_metadata"])
	s.Status = stripe.CheckoutSessionStatusComplete
	s.PaymentStatus = stripe.CheckoutSessionPaymentStatusPaid
	s.Subscription = &stripe.Subscription{ID: sub.ID}
	return clone(sub)
}

// NewSubscription creates an active subscription of customer to the price, as if made
// in the Dashboard.
func (f *Fake) NewSubscription(customer, priceID string, metadata map[string]string) *stripe.Subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, _ := json.Marshal(metadata)
	return clone(f.newSubscription(customer, f.prices[priceID], 0, string(raw)))
}

func (f *Fake) newSubscription(customer string, price *stripe.Price, trialDays int, metadataJSON string) *stripe.Subscription {
	now := f.now().Unix()
	sub := &stripe.Subscription{
		ID: f.id("sub"), Object: "subscription", Customer: &stripe.Customer{ID: customer},
		Status: stripe.SubscriptionStatusActive, Created: now, StartDate: now,
		CurrentPeriodStart: now, CurrentPeriodEnd: time.Unix(now, 0).AddDate(0, 1, 0).Unix(),
		Metadata: map[string]string{},
	}
	_ = json.Unmarshal([]byte(metadataJSON), &sub.Metadata)
	if trialDays > 0 {
		sub.Status = stripe.SubscriptionStatusTrialing
		sub.TrialStart = now
		sub.TrialEnd = time.Unix(now, 0).AddDate(0, 0, trialDays).Unix()
		sub.CurrentPeriodEnd = sub.TrialEnd
	}
	sub.Items = &stripe.SubscriptionItemList{Data: []*stripe.SubscriptionItem{{ID: f.id("si"), Price: price, Quantity: 1, Subscription: sub.ID}}}
	f.subscriptions[sub.ID] = sub
	return sub
}

// Subscription returns a subscription as it stands.
func (f *Fake) Subscription(id string) *stripe.Subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	return clone(f.subscriptions[id])
}

// UpdateSubscription changes a subscription as Stripe would on its own (a renewal, a
// failed payment), and returns it.
func (f *Fake) UpdateSubscription(id string, change func(*stripe.Subscription)) *stripe.Subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.subscriptions[id])
	return clone(f.subscriptions[id])
}

// AddInvoice records an invoice of a customer's subscription and returns it.
func (f *Fake) AddInvoice(customer, subscription string, status stripe.InvoiceStatus, amount int64) *stripe.Invoice {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	in := &stripe.Invoice{
		ID: f.id("in"), Object: "invoice", Customer: &stripe.Customer{ID: customer}, Status: status,
		AmountDue: amount, Currency: stripe.CurrencyUSD, Number: fmt.Sprintf("BP-%04d", f.seq),
		HostedInvoiceURL: "https://invoice.stripe.test/" + strconv.Itoa(f.seq), Created: f.now().Unix() + int64(f.seq),
	}
	if subscription != "" {
		in.Subscription = &stripe.Subscription{ID: subscription}
	}
	if status == stripe.InvoiceStatusPaid {
		in.AmountPaid = amount
	} else {
		in.AmountRemaining = amount
	}
	f.invoices = append(f.invoices, in)
	return clone(in)
}

// Event is an event of typ about object, as Stripe would deliver it, with the API
// version stripe-go pins.
func Event(id string, typ stripe.EventType, object any) []byte {
	return EventWithVersion(id, typ, object, stripe.APIVersion)
}

// EventWithVersion is Event rendered for another API version.
func EventWithVersion(id string, typ stripe.EventType, object any, version string) []byte {
	raw, err := json.Marshal(object)
	if err != nil {
		panic(err)
	}
	body, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": version, "created": time.Now().Unix(),
		"type": typ, "livemode": false, "pending_webhooks": 1,
		"data": map[string]any{"object": json.RawMessage(raw)},
	})
	if err != nil {
		panic(err)
	}
	return body
}

// Sign returns the Stripe-Signature header for payload signed with secret at t, made
// by stripe-go's own test helper.
func Sign(payload []byte, secret string, t time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: t}).Header
}

func clone[T any](v *T) *T {
	if v == nil {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	out := new(T)
	if err := json.Unmarshal(raw, out); err != nil {
		panic(err)
	}
	return out
}

func (f *Fake) id(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s_fake%06d", prefix, f.seq)
}

var (
	pathPrice        = regexp.MustCompile(`^/v1/prices/([^/]+)$`)
	pathProduct      = regexp.MustCompile(`^/v1/products/([^/]+)$`)
	pathCustomer     = regexp.MustCompile(`^/v1/customers/([^/]+)$`)
	pathSession      = regexp.MustCompile(`^/v1/checkout/sessions/([^/]+)$`)
	pathSubscription = regexp.MustCompile(`^/v1/subscriptions/([^/]+)$`)
	pathInvoice      = regexp.MustCompile(`^/v1/invoices/([^/]+)$`)
)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Header.Get("Idempotency-Key")
	f.requests = append(f.requests, Request{Method: r.Method, Path: r.URL.Path, IdempotencyKey: key, Form: r.Form})
	if len(f.failures) > 0 {
		status := f.failures[0]
		f.failures = f.failures[1:]
		writeError(w, status, "api_error", "", "the fake was told to fail")
		return
	}
	if key != "" && r.Method != http.MethodGet {
		if rec, ok := f.idempotent[key]; ok {
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body)
			return
		}
	}
	status, body := f.route(r)
	raw, _ := json.Marshal(body)
	if key != "" && r.Method != http.MethodGet {
		f.idempotent[key] = recorded{status: status, body: raw}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

type errorBody struct {
	Error map[string]string `json:"error"`
}

func notFound(what string) (int, any) {
	return http.StatusNotFound, errorBody{map[string]string{"type": "invalid_request_error", "code": "resource_missing", "message": "No such " + what}}
}

func writeError(w http.ResponseWriter, status int, typ, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{map[string]string{"type": typ, "code": code, "message": message}})
}

// list is Stripe's list envelope.
type list struct {
	Object  string `json:"object"`
	Data    any    `json:"data"`
	HasMore bool   `json:"has_more"`
	URL     string `json:"url"`
}

// formList returns the values of an array parameter, however stripe-go indexed it.
func formList(form url.Values, name string) []string {
	var keys []string
	for k := range form {
		if k == name+"[]" || (strings.HasPrefix(k, name+"[") && strings.Count(k, "[") == 1) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, form[k]...)
	}
	return out
}

func metadataOf(form url.Values) map[string]string {
	md := map[string]string{}
	for k, v := range form {
		if name, ok := strings.CutPrefix(k, "metadata["); ok {
			md[strings.TrimSuffix(name, "]")] = v[0]
		}
	}
	return md
}

func (f *Fake) route(r *http.Request) (int, any) {
	form, path := r.Form, r.URL.Path
	switch {
	case r.Method == http.MethodPost && path == "/v1/customers":
		c := &stripe.Customer{ID: f.id("cus"), Object: "customer", Email: form.Get("email"), Metadata: metadataOf(form), Created: f.now().Unix()}
		f.customers[c.ID] = c
		return http.StatusOK, c
	case r.Method == http.MethodGet && pathCustomer.MatchString(path):
		if c := f.customers[pathCustomer.FindStringSubmatch(path)[1]]; c != nil {
			return http.StatusOK, c
		}
		return notFound("customer")

	case r.Method == http.MethodGet && path == "/v1/prices":
		keys := formList(form, "lookup_keys")
		var out []*stripe.Price
		for _, p := range f.prices {
			if (len(keys) == 0 || slices.Contains(keys, p.LookupKey)) && (form.Get("active") == "" || strconv.FormatBool(p.Active) == form.Get("active")) {
				out = append(out, p)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return http.StatusOK, list{Object: "list", Data: out, URL: path}
	case r.Method == http.MethodPost && path == "/v1/prices":
		amount, _ := strconv.ParseInt(form.Get("unit_amount"), 10, 64)
		if form.Get("transfer_lookup_key") == "true" {
			for _, p := range f.prices {
				if p.LookupKey == form.Get("lookup_key") {
					p.LookupKey = ""
				}
			}
		} else {
			for _, p := range f.prices {
				if form.Get("lookup_key") != "" && p.LookupKey == form.Get("lookup_key") {
					return http.StatusBadRequest, errorBody{map[string]string{"type": "invalid_request_error", "message": "A price with this lookup_key exists"}}
				}
			}
		}
		return http.StatusOK, f.newPrice(form.Get("product"), form.Get("lookup_key"), amount, form.Get("currency"), form.Get("recurring[interval]"))
	case r.Method == http.MethodPost && pathPrice.MatchString(path):
		p := f.prices[pathPrice.FindStringSubmatch(path)[1]]
		if p == nil {
			return notFound("price")
		}
		if v := form.Get("active"); v != "" {
			p.Active = v == "true"
		}
		return http.StatusOK, p

	case r.Method == http.MethodGet && pathProduct.MatchString(path):
		if p := f.products[pathProduct.FindStringSubmatch(path)[1]]; p != nil {
			return http.StatusOK, p
		}
		return notFound("product")
	case r.Method == http.MethodPost && path == "/v1/products":
		id := form.Get("id")
		if id == "" {
			id = f.id("prod")
		}
		p := &stripe.Product{ID: id, Object: "product", Name: form.Get("name"), Description: form.Get("description"), Active: true, Metadata: metadataOf(form)}
		f.products[id] = p
		return http.StatusOK, p
	case r.Method == http.MethodPost && pathProduct.MatchString(path):
		p := f.products[pathProduct.FindStringSubmatch(path)[1]]
		if p == nil {
			return notFound("product")
		}
		if form.Has("name") {
			p.Name = form.Get("name")
		}
		if form.Has("description") {
			p.Description = form.Get("description")
		}
		return http.StatusOK, p

	case r.Method == http.MethodPost && path == "/v1/checkout/sessions":
		price := form.Get("line_items[0][price]")
		if f.prices[price] == nil {
			return notFound("price")
		}
		md := map[string]string{}
		for k, v := range form {
			if name, ok := strings.CutPrefix(k, "subscription_data[metadata]["); ok {
				md[strings.TrimSuffix(name, "]")] = v[0]
			}
		}
		mdJSON, _ := json.Marshal(md)
		s := &stripe.CheckoutSession{
			ID: f.id("cs"), Object: "checkout.session", Mode: stripe.CheckoutSessionMode(form.Get("mode")),
			Customer: &stripe.Customer{ID: form.Get("customer")}, ClientReferenceID: form.Get("client_reference_id"),
			SuccessURL: form.Get("success_url"), CancelURL: form.Get("cancel_url"), Status: stripe.CheckoutSessionStatusOpen,
			ExpiresAt: f.now().Add(24 * time.Hour).Unix(),
			Metadata: map[string]string{
				"fake_price": price, "fake_trial_days": form.Get("subscription_data[trial_period_days]"),
				"fake_subscription_metadata": string(mdJSON),
			},
		}
		s.URL = "https://checkout.stripe.test/c/pay/" + s.ID
		f.sessions[s.ID] = s
		return http.StatusOK, s
	case r.Method == http.MethodGet && pathSession.MatchString(path):
		if s := f.sessions[pathSession.FindStringSubmatch(path)[1]]; s != nil {
			return http.StatusOK, s
		}
		return notFound("checkout.session")

	case r.Method == http.MethodPost && path == "/v1/billing_portal/sessions":
		if f.customers[form.Get("customer")] == nil {
			return notFound("customer")
		}
		id := f.id("bps")
		return http.StatusOK, &stripe.BillingPortalSession{ID: id, Object: "billing_portal.session", Customer: form.Get("customer"), ReturnURL: form.Get("return_url"), URL: "https://billing.stripe.test/p/session/" + id}

	case r.Method == http.MethodGet && pathSubscription.MatchString(path):
		if s := f.subscriptions[pathSubscription.FindStringSubmatch(path)[1]]; s != nil {
			return http.StatusOK, s
		}
		return notFound("subscription")
	case r.Method == http.MethodPost && pathSubscription.MatchString(path):
		s := f.subscriptions[pathSubscription.FindStringSubmatch(path)[1]]
		if s == nil {
			return notFound("subscription")
		}
		if v := form.Get("cancel_at_period_end"); v != "" {
			s.CancelAtPeriodEnd = v == "true"
			if s.CancelAtPeriodEnd {
				s.CanceledAt = f.now().Unix()
				s.CancelAt = s.CurrentPeriodEnd
			} else {
				s.CanceledAt, s.CancelAt = 0, 0
			}
		}
		if item := form.Get("items[0][id]"); item != "" {
			p := f.prices[form.Get("items[0][price]")]
			if p == nil {
				return notFound("price")
			}
			for _, it := range s.Items.Data {
				if it.ID == item {
					it.Price = p
				}
			}
		}
		return http.StatusOK, s
	case r.Method == http.MethodDelete && pathSubscription.MatchString(path):
		s := f.subscriptions[pathSubscription.FindStringSubmatch(path)[1]]
		if s == nil {
			return notFound("subscription")
		}
		s.Status = stripe.SubscriptionStatusCanceled
		s.CanceledAt = f.now().Unix()
		s.EndedAt = s.CanceledAt
		return http.StatusOK, s

	case r.Method == http.MethodGet && path == "/v1/invoices":
		var out []*stripe.Invoice
		for i := len(f.invoices) - 1; i >= 0; i-- { // newest first
			if in := f.invoices[i]; form.Get("customer") == "" || in.Customer.ID == form.Get("customer") {
				out = append(out, in)
			}
		}
		if after := form.Get("starting_after"); after != "" {
			i := slices.IndexFunc(out, func(in *stripe.Invoice) bool { return in.ID == after })
			out = out[i+1:]
		}
		limit, _ := strconv.Atoi(form.Get("limit"))
		if limit == 0 {
			limit = 10
		}
		more := len(out) > limit
		if more {
			out = out[:limit]
		}
		return http.StatusOK, list{Object: "list", Data: out, HasMore: more, URL: path}
	case r.Method == http.MethodGet && pathInvoice.MatchString(path):
		id := pathInvoice.FindStringSubmatch(path)[1]
		for _, in := range f.invoices {
			if in.ID == id {
				return http.StatusOK, in
			}
		}
		return notFound("invoice")
	}
	if status, body, ok := f.routeUsage(r); ok {
		return status, body
	}
	return http.StatusNotFound, errorBody{map[string]string{"type": "invalid_request_error", "message": "the fake does not serve " + r.Method + " " + path}}
}
