package notification

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
	"google.golang.org/grpc/metadata"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/services/notification/dbsqlc"
)

// The metadata keys the gateway turns SendGrid's signature headers into.
const (
	signatureKey = "x-twilio-email-event-webhook-signature"
	timestampKey = "x-twilio-email-event-webhook-timestamp"
)

// webhookMaxAge is how old a signed webhook may be. SendGrid signs the timestamp with the
// body, so an old but genuine request is a replay.
const webhookMaxAge = 5 * time.Minute

// sendgridEvent is the part of a SendGrid event we act on. Our custom_args arrive as
// top-level fields, which is how notification_id comes back.
type sendgridEvent struct {
	ID             string `json:"sg_event_id"`
	Event          string `json:"event"`
	Email          string `json:"email"`
	Type           string `json:"type"`
	Reason         string `json:"reason"`
	NotificationID string `json:"notification_id"`
}

// HandleSendgridEvents verifies a SendGrid event webhook and applies its events once
// each. Nothing is stored unless the signature over the raw body checks out.
func (s *Server) HandleSendgridEvents(ctx context.Context, req *notificationv1.HandleSendgridEventsRequest) (*notificationv1.HandleSendgridEventsResponse, error) {
	body := req.GetBody().GetData()
	if err := s.verifyWebhook(ctx, body); err != nil {
		return nil, err
	}
	var events []sendgridEvent
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, fault.Wrap(fault.InvalidArgument, err, "the body is not a JSON array of events")
	}
	kept := events[:0]
	for _, e := range events {
		// Without an id an event cannot be deduplicated; SendGrid always sends one.
		if e.ID != "" {
			kept = append(kept, e)
		}
	}
	if err := s.store.applySendgridEvents(ctx, kept, func(q *dbsqlc.Queries, e sendgridEvent) error {
		return applyEvent(ctx, q, e)
	}); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not record the events")
	}
	return &notificationv1.HandleSendgridEventsResponse{}, nil
}

// verifyWebhook checks the ECDSA signature SendGrid made over timestamp+body, and that
// the timestamp is recent.
func (s *Server) verifyWebhook(ctx context.Context, body []byte) error {
	unauthenticated := func(reason string) error {
		return fault.New(fault.Unauthenticated, "the webhook signature is not valid: "+reason)
	}
	if s.webhookKey == nil {
		return unauthenticated("no verification key is configured")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	sig, ts := first(md.Get(signatureKey)), first(md.Get(timestampKey))
	if sig == "" || ts == "" {
		return unauthenticated("signature or timestamp missing")
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return unauthenticated("bad timestamp")
	}
	if age := s.now().Sub(time.Unix(unix, 0)); age > webhookMaxAge || age < -webhookMaxAge {
		return unauthenticated("timestamp too old")
	}
	ok, err := eventwebhook.VerifySignature(s.webhookKey, body, sig, ts)
	if err != nil || !ok {
		return unauthenticated("signature mismatch")
	}
	return nil
}

func first(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

// applyEvent updates the email's status and, for a hard bounce or a spam report,
// suppresses the address for everything but security email.
func applyEvent(ctx context.Context, q *dbsqlc.Queries, e sendgridEvent) error {
	var status, reason string
	suppress := ""
	switch e.Event {
	case "delivered":
		status = statusDelivered
	case "bounce":
		// SendGrid reports soft bounces as type "blocked": the address is fine, this
		// message is lost. Only a hard bounce says the address is bad.
		if e.Type == "blocked" {
			status, reason = statusFailed, "blocked: "+e.Reason
		} else {
			status, reason, suppress = statusBounced, e.Reason, "hard bounce"
		}
	case "dropped":
		status, reason = statusDropped, e.Reason
	case "spamreport":
		suppress = "spam report"
	default:
		return nil // opens, clicks and the like: not a delivery status
	}
	if status != "" {
		if id, err := uuid.Parse(e.NotificationID); err == nil {
			if _, err := q.DeliverySetEmailStatusFromEvent(ctx, dbsqlc.DeliverySetEmailStatusFromEventParams{
				NotificationID: id, Status: status, StatusReason: brief(reason),
			}); err != nil {
				return err
			}
		}
	}
	if suppress != "" && e.Email != "" {
		return q.SuppressionInsert(ctx, dbsqlc.SuppressionInsertParams{
			Email: strings.ToLower(e.Email), Category: "", Reason: suppress,
		})
	}
	return nil
}
