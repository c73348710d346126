package subscription

import (
	"time"

	"github.com/stripe/stripe-go/v76"
	"google.golang.org/protobuf/types/known/timestamppb"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/services/subscription/dbsqlc"
)

// statuses maps Stripe's subscription statuses to the proto's.
var statuses = map[string]subscriptionv1.SubscriptionStatus{
	string(stripe.SubscriptionStatusTrialing):          subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_TRIALING,
	string(stripe.SubscriptionStatusActive):            subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE,
	string(stripe.SubscriptionStatusPastDue):           subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_PAST_DUE,
	string(stripe.SubscriptionStatusCanceled):          subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_CANCELED,
	string(stripe.SubscriptionStatusIncomplete):        subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_INCOMPLETE,
	string(stripe.SubscriptionStatusUnpaid):            subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_UNPAID,
	string(stripe.SubscriptionStatusIncompleteExpired): subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_INCOMPLETE_EXPIRED,
	string(stripe.SubscriptionStatusPaused):            subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_PAUSED,
}

// statusName is the Stripe status of a proto status, for filters; "" for unspecified.
func statusName(s subscriptionv1.SubscriptionStatus) string {
	for name, st := range statuses {
		if st == s {
			return name
		}
	}
	return ""
}

// grantsPlan reports whether a subscription in this Stripe status entitles its holder
// to its plan, as the proto's SubscriptionStatus says: trialing, active and past_due do
// (Stripe is still retrying a failed payment); every other status means the free plan.
func grantsPlan(status string) bool {
	switch stripe.SubscriptionStatus(status) {
	case stripe.SubscriptionStatusTrialing, stripe.SubscriptionStatusActive, stripe.SubscriptionStatusPastDue:
		return true
	}
	return false
}

// ended reports whether a subscription in this status is over for good, so that its
// holder may start another through checkout.
func ended(status string) bool {
	return status == string(stripe.SubscriptionStatusCanceled) || status == string(stripe.SubscriptionStatusIncompleteExpired)
}

var intervals = map[plans.Interval]subscriptionv1.BillingInterval{
	plans.Month: subscriptionv1.BillingInterval_BILLING_INTERVAL_MONTH,
	plans.Year:  subscriptionv1.BillingInterval_BILLING_INTERVAL_YEAR,
}

// planToProto describes a plan, with its price as Stripe has it when known (pr.id set),
// else as the catalogue file says.
func planToProto(p plans.Plan, pr price) *subscriptionv1.Plan {
	out := &subscriptionv1.Plan{
		Id:                 p.ID,
		DisplayName:        p.DisplayName,
		Description:        p.Description,
		Features:           p.Features,
		QuotaLimits:        p.QuotaLimits,
		RateLimitPerMinute: int32(min(p.RateLimitPerMinute, 1<<31-1)), //nolint:gosec // G115: clamped to int32 first.
		TrialPeriodDays:    int32(min(p.TrialDays, 1<<31-1)),          //nolint:gosec // G115: clamped to int32 first.
		MaxUploadBytes:     p.MaxUploadBytes,
	}
	if p.Price == nil {
		return out
	}
	amount := plans.Price{Amount: p.Price.Amount, Currency: p.Price.Currency, Interval: p.Price.Interval}
	if pr.id != "" {
		out.StripePriceId = pr.id
		amount = plans.Price{Amount: pr.amount, Currency: pr.currency, Interval: pr.interval}
	}
	out.PriceAmount = amount.Amount
	out.MonthlyPriceAmount = amount.MonthlyAmount()
	out.Currency = amount.Currency
	out.Interval = intervals[amount.Interval]
	return out
}

func subscriptionToProto(row dbsqlc.Subscription) *subscriptionv1.Subscription {
	return &subscriptionv1.Subscription{
		Id:                   row.ID.String(),
		UserId:               row.UserID.String(),
		PlanId:               row.PlanID,
		Status:               statuses[row.Status],
		CurrentPeriodStart:   timestamppb.New(row.CurrentPeriodStart),
		CurrentPeriodEnd:     timestamppb.New(row.CurrentPeriodEnd),
		CancelAtPeriodEnd:    row.CancelAtPeriodEnd,
		CancelTime:           optionalTime(row.CancelTime),
		TrialEndTime:         optionalTime(row.TrialEndTime),
		StripeCustomerId:     row.StripeCustomerID,
		StripeSubscriptionId: row.StripeSubscriptionID,
		CreateTime:           timestamppb.New(row.CreateTime),
		UpdateTime:           timestamppb.New(row.UpdateTime),
	}
}

func optionalTime(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// unixTime is a Stripe timestamp; nil for Stripe's 0, "never".
func unixTime(sec int64) *time.Time {
	if sec == 0 {
		return nil
	}
	t := time.Unix(sec, 0).UTC()
	return &t
}

var invoiceStatuses = map[stripe.InvoiceStatus]subscriptionv1.InvoiceStatus{
	stripe.InvoiceStatusDraft:         subscriptionv1.InvoiceStatus_INVOICE_STATUS_DRAFT,
	stripe.InvoiceStatusOpen:          subscriptionv1.InvoiceStatus_INVOICE_STATUS_OPEN,
	stripe.InvoiceStatusPaid:          subscriptionv1.InvoiceStatus_INVOICE_STATUS_PAID,
	stripe.InvoiceStatusUncollectible: subscriptionv1.InvoiceStatus_INVOICE_STATUS_UNCOLLECTIBLE,
	stripe.InvoiceStatusVoid:          subscriptionv1.InvoiceStatus_INVOICE_STATUS_VOID,
}

func invoiceToProto(in *stripe.Invoice) *subscriptionv1.Invoice {
	return &subscriptionv1.Invoice{
		Id:               in.ID,
		Number:           in.Number,
		Status:           invoiceStatuses[in.Status],
		AmountDue:        in.AmountDue,
		AmountPaid:       in.AmountPaid,
		AmountRemaining:  in.AmountRemaining,
		Currency:         string(in.Currency),
		HostedInvoiceUrl: in.HostedInvoiceURL,
		InvoicePdfUrl:    in.InvoicePDF,
		PeriodStart:      timestamppb.New(time.Unix(in.PeriodStart, 0)),
		PeriodEnd:        timestamppb.New(time.Unix(in.PeriodEnd, 0)),
		CreateTime:       timestamppb.New(time.Unix(in.Created, 0)),
	}
}

// unixTimeOr is a Stripe timestamp, the zero time for Stripe's 0.
func unixTimeOr(sec int64) time.Time {
	if t := unixTime(sec); t != nil {
		return *t
	}
	return time.Unix(0, 0).UTC()
}
