package subscription

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/metadata"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/services/subscription/dbsqlc"
)

// signatureTolerance is how old a delivery's signature may be: older is a replay.
const signatureTolerance = 5 * time.Minute

// Outcomes of an event, as the ledger records them and the events metric counts them.
const (
	outcomeApplied   = "applied"   // the re-fetched object was written
	outcomeStale     = "stale"     // a newer read was stored already
	outcomeIgnored   = "ignored"   // a type not acted on, or an object not ours
	outcomeDuplicate = "duplicate" // recorded before: no effect (counted, never recorded)
)

// HandleStripeWebhook applies one Stripe event, exactly once in effect:
//
//   - The signature is checked on the raw body, with a five-minute tolerance; a bad or
//     stale one is UNAUTHENTICATED (401) and changes nothing.
//   - The event's payload is never trusted for state, since events arrive out of order:
//     the subscription it concerns is read again from Stripe, under a read number taken
//     first, and written only if no later read is stored. Stripe unreachable meanwhile is
//     UNAVAILABLE (503), so that Stripe delivers the event again.
//   - The event id enters the ledger in the transaction of its effect, billing
//     notifications included (their idempotency key is the event id): a redelivery, or
//     the same event at two replicas at once, has its effect once.
//   - Unknown types are recorded and answered 200; an API version other than the one
//     stripe-go pins is logged and counted, and the event applied.
func (s *Server) HandleStripeWebhook(ctx context.Context, req *subscriptionv1.HandleStripeWebhookRequest) (*subscriptionv1.HandleStripeWebhookResponse, error) {
	if err := s.billing(); err != nil {
		return nil, err
	}
	if s.cfg.StripeWebhookSecret == "" {
		return nil, fault.New(fault.FailedPrecondition, "Stripe webhooks are not configured: set BACKPLANE_STRIPE_WEBHOOK_SECRET")
	}
	var sig string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("stripe-signature"); len(v) > 0 {
			sig = v[0]
		}
	}
	ev, err := webhook.ConstructEventWithOptions(req.GetBody().GetData(), sig, s.cfg.StripeWebhookSecret,
		webhook.ConstructEventOptions{Tolerance: signatureTolerance, IgnoreAPIVersionMismatch: true})
	if err != nil {
		s.metrics.rejected.Add(ctx, 1)
		return nil, fault.Wrap(fault.Unauthenticated, err, "the Stripe-Signature header does not verify this body")
	}
	if ev.APIVersion != stripe.APIVersion {
		s.metrics.versionMismatch.Add(ctx, 1, metric.WithAttributes(attribute.String("api_version", ev.APIVersion)))
		s.log.WarnContext(ctx, "Stripe event of another API version: set the endpoint's version to the one Backplane speaks",
			"event_id", ev.ID, "type", string(ev.Type), "api_version", ev.APIVersion, "want", stripe.APIVersion)
	}
	outcome, err := s.applyEvent(ctx, &ev)
	if err != nil {
		s.log.WarnContext(ctx, "Stripe event not applied: Stripe will deliver it again", "event_id", ev.ID, "type", string(ev.Type), "error", err.Error())
		return nil, err
	}
	s.metrics.events.Add(ctx, 1, metric.WithAttributes(attribute.String("type", string(ev.Type)), attribute.String("outcome", outcome)))
	return &subscriptionv1.HandleStripeWebhookResponse{}, nil
}

// change is what an event leads to, worked out from Stripe before the transaction.
type change struct {
	objectID string
	// sub is the subscription the event concerns, as Stripe has it now; nil for none.
	sub *stripe.Subscription
	// user owns sub; uuid.Nil when the object is not one of ours.
	user uuid.UUID
	// notice is the billing notification the event sends; nil for none.
	notice *notificationv1.SendRequest
}

// applyEvent reads what ev concerns from Stripe and applies it, and returns its outcome.
func (s *Server) applyEvent(ctx context.Context, ev *stripe.Event) (string, error) {
	if seen, err := s.store.eventSeen(ctx, ev.ID); err != nil {
		return "", fault.Wrap(fault.Unavailable, err, "could not read the events ledger")
	} else if seen {
		return outcomeDuplicate, nil
	}
	// The read number is taken before Stripe is read, so that a write from a later read
	// (another event, another replica) is never overwritten by this one.
	version, err := s.store.readVersion(ctx)
	if err != nil {
		return "", fault.Wrap(fault.Unavailable, err, "could not number the read")
	}
	ch, err := s.changeOf(ctx, ev)
	if err != nil {
		return "", err
	}
	outcome := outcomeIgnored
	var written bool
	var row dbsqlc.Subscription
	err = s.store.inTx(ctx, func(tx *store) error {
		fresh, err := tx.recordEvent(ctx, dbsqlc.StripeEventInsertParams{
			ID: ev.ID, Type: string(ev.Type), ApiVersion: ev.APIVersion, ObjectID: ch.objectID,
			Outcome: outcomeIgnored, CreateTime: time.Unix(ev.Created, 0).UTC(),
		})
		if err != nil {
			return err
		}
		if !fresh {
			outcome = outcomeDuplicate
			return nil
		}
		if ch.sub != nil && ch.user != uuid.Nil {
			row, written, err = s.storeSubscription(ctx, tx, version, ch.sub, ch.user)
			if err != nil {
				return err
			}
			outcome = outcomeStale
			if written {
				outcome = outcomeApplied
			}
		}
		if ch.notice != nil {
			if err := s.sendNotice(ctx, ch.notice); err != nil {
				return err
			}
		}
		if outcome != outcomeIgnored {
			return tx.setEventOutcome(ctx, ev.ID, outcome)
		}
		return nil
	})
	if err != nil {
		if fe, ok := errors.AsType[*fault.Error](err); ok {
			return "", fe
		}
		return "", fault.Wrap(fault.Unavailable, err, "could not record the event")
	}
	if written {
		s.published(ctx, row.UserID.String())
	}
	return outcome, nil
}

// changeOf reads from Stripe what ev concerns. Objects Stripe no longer has lead to
// no change; Stripe unreachable is UNAVAILABLE.
func (s *Server) changeOf(ctx context.Context, ev *stripe.Event) (*change, error) {
	ch := &change{}
	if ev.Data != nil {
		ch.objectID, _ = ev.Data.Object["id"].(string)
	}
	var err error
	switch ev.Type {
	case stripe.EventTypeCheckoutSessionCompleted:
		err = s.checkoutChange(ctx, ch)
	case stripe.EventTypeCustomerSubscriptionCreated, stripe.EventTypeCustomerSubscriptionUpdated,
		stripe.EventTypeCustomerSubscriptionDeleted, stripe.EventTypeCustomerSubscriptionTrialWillEnd:
		err = s.subscriptionChange(ctx, ch, ch.objectID, uuid.Nil)
		if err == nil && ch.sub != nil && ch.user != uuid.Nil {
			ch.notice = subscriptionNotice(ev, ch)
		}
	case stripe.EventTypeInvoicePaid, stripe.EventTypeInvoicePaymentFailed, stripe.EventTypeInvoicePaymentActionRequired:
		err = s.invoiceChange(ctx, ev, ch)
	}
	if missing(err) {
		s.log.InfoContext(ctx, "Stripe no longer has the event's object", "event_id", ev.ID, "object_id", ch.objectID)
		return &change{objectID: ch.objectID}, nil
	}
	if err != nil {
		return nil, stripeFault(err, "could not read the event's object from Stripe")
	}
	return ch, nil
}

// checkoutChange follows a completed checkout to the subscription it made, whose user
// the session names as its client_reference_id.
func (s *Server) checkoutChange(ctx context.Context, ch *change) error {
	var sess *stripe.CheckoutSession
	err := s.stripe.call(ctx, "get checkout session", func(ctx context.Context) error {
		var err error
		sess, err = s.stripe.api.CheckoutSessions.Get(ch.objectID, &stripe.CheckoutSessionParams{Params: params(ctx, "")})
		return err
	})
	if err != nil || sess.Mode != stripe.CheckoutSessionModeSubscription || sess.Subscription == nil {
		return err
	}
	user, _ := uuid.Parse(sess.ClientReferenceID)
	return s.subscriptionChange(ctx, ch, sess.Subscription.ID, user)
}

// invoiceChange follows an invoice to its subscription, and for a failed payment or one
// that needs the customer, prepares the notification.
func (s *Server) invoiceChange(ctx context.Context, ev *stripe.Event, ch *change) error {
	var in *stripe.Invoice
	err := s.stripe.call(ctx, "get invoice", func(ctx context.Context) error {
		var err error
		in, err = s.stripe.api.Invoices.Get(ch.objectID, &stripe.InvoiceParams{Params: params(ctx, "")})
		return err
	})
	if err != nil {
		return err
	}
	if in.Subscription != nil && in.Subscription.ID != "" {
		if err := s.subscriptionChange(ctx, ch, in.Subscription.ID, uuid.Nil); err != nil {
			return err
		}
	} else if in.Customer != nil {
		if c, err := s.store.customerByStripeID(ctx, in.Customer.ID); err == nil {
			ch.user = c.UserID
		}
	}
	if ch.user != uuid.Nil {
		ch.notice = invoiceNotice(ev, in, ch.user)
	}
	return nil
}

// subscriptionChange reads a subscription from Stripe and finds whose it is: the user
// in its metadata (written at checkout), else hint, else the owner of its customer.
func (s *Server) subscriptionChange(ctx context.Context, ch *change, id string, hint uuid.UUID) error {
	var sub *stripe.Subscription
	err := s.stripe.call(ctx, "get subscription", func(ctx context.Context) error {
		var err error
		sub, err = s.stripe.api.Subscriptions.Get(id, &stripe.SubscriptionParams{Params: params(ctx, "")})
		return err
	})
	if err != nil {
		return err
	}
	ch.sub = sub
	if u, ok := userIDOf(sub.Metadata); ok {
		ch.user = u
		return nil
	}
	if hint != uuid.Nil {
		ch.user = hint
		return nil
	}
	if sub.Customer != nil {
		c, err := s.store.customerByStripeID(ctx, sub.Customer.ID)
		switch {
		case err == nil:
			ch.user = c.UserID
		case !errors.Is(err, database.ErrNotFound):
			return fault.Wrap(fault.Unavailable, err, "could not read the billing account")
		}
	}
	return nil
}

// sendNotice sends a billing notification. Its idempotency key is the event id, so a
// delivery that sent it and then failed to commit sends nothing the second time.
func (s *Server) sendNotice(ctx context.Context, n *notificationv1.SendRequest) error {
	if s.notify == nil {
		s.log.WarnContext(ctx, "no notification service: billing notification not sent", "template", n.GetTemplate())
		return nil
	}
	if _, err := s.notify.Send(ctx, n); err != nil {
		return fault.Wrap(fault.Unavailable, err, "could not send the billing notification")
	}
	return nil
}

// notice is a billing notification to user, in the app and by email.
func notice(ev *stripe.Event, user uuid.UUID, title, body string) *notificationv1.SendRequest {
	return &notificationv1.SendRequest{
		Recipient:      &notificationv1.SendRequest_UserId{UserId: user.String()},
		Template:       "message",
		Data:           map[string]string{"title": title, "body": body, "path": "/billing"},
		Category:       notificationv1.Category_CATEGORY_BILLING,
		Channels:       []notificationv1.Channel{notificationv1.Channel_CHANNEL_IN_APP, notificationv1.Channel_CHANNEL_EMAIL},
		IdempotencyKey: ev.ID,
	}
}

func subscriptionNotice(ev *stripe.Event, ch *change) *notificationv1.SendRequest {
	switch ev.Type {
	case stripe.EventTypeCustomerSubscriptionTrialWillEnd:
		when := "soon"
		if ch.sub.TrialEnd != 0 {
			when = "on " + time.Unix(ch.sub.TrialEnd, 0).UTC().Format("2 January 2006")
		}
		return notice(ev, ch.user, "Your trial ends "+when,
			"Your free trial ends "+when+". Add a payment method to keep your plan; without one your account moves to the free plan.")
	case stripe.EventTypeCustomerSubscriptionDeleted:
		return notice(ev, ch.user, "Your subscription has ended",
			"Your subscription has ended and your account is on the free plan. You can subscribe again at any time.")
	}
	return nil
}

func invoiceNotice(ev *stripe.Event, in *stripe.Invoice, user uuid.UUID) *notificationv1.SendRequest {
	amount := money(in.AmountDue, string(in.Currency))
	switch ev.Type {
	case stripe.EventTypeInvoicePaymentFailed:
		return notice(ev, user, "Your payment failed",
			"We could not collect "+amount+" for invoice "+in.Number+". Update your payment method; Stripe retries the payment over the next days, and your plan stays meanwhile.")
	case stripe.EventTypeInvoicePaymentActionRequired:
		body := "Your bank asks you to confirm the payment of " + amount + " for invoice " + in.Number + "."
		if in.HostedInvoiceURL != "" {
			body += " Confirm it here: " + in.HostedInvoiceURL
		}
		return notice(ev, user, "Your payment needs your confirmation", body)
	}
	return nil
}

// money writes an amount in minor units, such as "20.00 USD".
func money(minor int64, currency string) string {
	if currency == "" {
		return strconv.FormatInt(minor, 10)
	}
	return fmt.Sprintf("%d.%02d %s", minor/100, minor%100, strings.ToUpper(currency))
}
