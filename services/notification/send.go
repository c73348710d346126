package notification

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/services/notification/dbsqlc"
)

// Send renders a notification and stores it with its delivery rows and its email's River
// job in one transaction; a worker delivers the email afterwards. A repeated idempotency
// key returns the first notification and sends nothing.
func (s *Server) Send(ctx context.Context, req *notificationv1.SendRequest) (*notificationv1.SendResponse, error) {
	category, ok := categoryNames[req.GetCategory()]
	if !ok {
		return nil, badRequest("category", "a category is required")
	}
	if !s.catalog.has(req.GetTemplate()) {
		return nil, badRequest("template", "unknown template")
	}
	if req.GetIdempotencyKey() == "" {
		return nil, badRequest("idempotency_key", "an idempotency key is required")
	}

	params := dbsqlc.NotificationInsertParams{
		IdempotencyKey: req.GetIdempotencyKey(),
		Category:       category,
		Template:       req.GetTemplate(),
	}
	claim := unsubscribeClaim{Category: category}
	switch r := req.GetRecipient().(type) {
	case *notificationv1.SendRequest_UserId:
		id, err := uuid.Parse(r.UserId)
		if err != nil {
			return nil, badRequest("user_id", "must be a UUID")
		}
		params.UserID, claim.UserID = &id, &id
	case *notificationv1.SendRequest_Email:
		addr := strings.ToLower(strings.TrimSpace(r.Email))
		if addr == "" {
			return nil, badRequest("email", "an address is required")
		}
		params.Email, claim.Email = &addr, addr
	default:
		return nil, badRequest("recipient", "a user_id or an email is required")
	}

	enabled, err := s.channelsEnabled(ctx, params.UserID, category)
	if err != nil {
		return nil, err
	}
	var entries []deliveryEntry
	seen := map[string]bool{}
	for _, c := range req.GetChannels() {
		name, ok := channelNames[c]
		if !ok {
			return nil, badRequest("channels", "unknown channel")
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		params.Channels = append(params.Channels, name)
		switch {
		case name == channelInApp && params.UserID == nil:
			return nil, badRequest("channels", "a recipient given by email address can only be reached by CHANNEL_EMAIL")
		case !enabled[name]:
			entries = append(entries, deliveryEntry{channel: name, status: statusSuppressed, reason: "switched off by the recipient"})
		case name == channelInApp:
			// Storing the notification is its in-app delivery.
			params.InInbox = true
			entries = append(entries, deliveryEntry{channel: name, status: statusDelivered})
		default:
			entries = append(entries, deliveryEntry{channel: name, status: statusPending})
		}
	}
	if len(entries) == 0 {
		return nil, badRequest("channels", "at least one channel is required")
	}

	data := req.GetData()
	if data == nil {
		data = map[string]string{}
	}
	var unsubscribe string
	if category != categorySecurity {
		unsubscribe = s.links.unsubscribe(claim)
	}
	r, err := s.catalog.render(req.GetTemplate(), templateData{Data: data, UnsubscribeURL: unsubscribe})
	if err != nil {
		return nil, fault.Wrap(fault.InvalidArgument, err, "the data does not fit the template").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "data", Description: err.Error()}},
		})
	}
	params.Title, params.BodyText, params.BodyHtml = r.subject, r.text, r.html
	if params.Data, err = json.Marshal(data); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not store the notification")
	}

	row, deduplicated, err := s.store.createNotification(ctx, params, entries)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not store the notification")
	}
	if !deduplicated && params.InInbox {
		s.feed.publish(ctx, *params.UserID, row.ID)
	}
	return &notificationv1.SendResponse{NotificationId: row.ID.String(), Deduplicated: deduplicated}, nil
}

// channelsEnabled reports which channels a category reaches the recipient on: every
// channel unless a user switched it off. Security is always on; a bare address has no
// preferences (its unsubscribes are suppressions, checked at delivery).
func (s *Server) channelsEnabled(ctx context.Context, userID *uuid.UUID, category string) (map[string]bool, error) {
	enabled := map[string]bool{channelEmail: true, channelInApp: true}
	if userID == nil || category == categorySecurity {
		return enabled, nil
	}
	prefs, err := s.store.preferences(ctx, *userID)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not read preferences")
	}
	for _, p := range prefs {
		if p.Category == category {
			enabled[p.Channel] = p.Enabled
		}
	}
	return enabled, nil
}

// badRequest is an InvalidArgument error naming the offending field.
func badRequest(field, description string) error {
	return fault.New(fault.InvalidArgument, field+": "+description).WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: description}},
	})
}
