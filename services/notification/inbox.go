package notification

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"time"

	"github.com/google/uuid"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/notification/dbsqlc"
)

const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// pageToken is the position after the last notification of a page, and the filters it
// was listed with: a token is only good for the same query.
type pageToken struct {
	CreatedAt  time.Time `json:"t"`
	ID         uuid.UUID `json:"i"`
	UnreadOnly bool      `json:"u,omitempty"`
	Category   string    `json:"c,omitempty"`
}

func (t pageToken) encode() string {
	b, _ := json.Marshal(t) // a struct of plain fields always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(s string) (pageToken, error) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return t, err
	}
	return t, json.Unmarshal(b, &t)
}

// ListNotifications pages through the caller's in-app notifications, newest first.
func (s *Server) ListNotifications(ctx context.Context, req *notificationv1.ListNotificationsRequest) (*notificationv1.ListNotificationsResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = defaultPageSize
	case size < 0 || size > maxPageSize:
		return nil, badRequest("page_size", "must be between 0 and 200")
	}
	category := ""
	if req.GetCategory() != notificationv1.Category_CATEGORY_UNSPECIFIED {
		category = categoryNames[req.GetCategory()]
	}
	params := dbsqlc.NotificationListInboxParams{
		UserID: &userID, UnreadOnly: req.GetUnreadOnly(), Category: category,
		// One more than asked tells whether another page follows.
		MaxRows: int32(size + 1),
	}
	if req.GetPageToken() != "" {
		t, err := decodePageToken(req.GetPageToken())
		if err != nil || t.UnreadOnly != req.GetUnreadOnly() || t.Category != category {
			return nil, badRequest("page_token", "not a token of this listing")
		}
		params.AfterCreatedAt, params.AfterID = &t.CreatedAt, &t.ID
	}
	rows, err := s.store.listInbox(ctx, params)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not list notifications")
	}
	resp := &notificationv1.ListNotificationsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		last := rows[size-1]
		resp.NextPageToken = pageToken{CreatedAt: last.CreatedAt, ID: last.ID, UnreadOnly: req.GetUnreadOnly(), Category: category}.encode()
	}
	if resp.Notifications, err = s.withDeliveries(ctx, rows); err != nil {
		return nil, err
	}
	if resp.UnreadCount, err = s.store.unreadCount(ctx, userID); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not count notifications")
	}
	return resp, nil
}

// withDeliveries converts notifications for the API, with their progress per channel.
func (s *Server) withDeliveries(ctx context.Context, rows []dbsqlc.Notification) ([]*notificationv1.Notification, error) {
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	outbox, err := s.store.deliveries(ctx, ids)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not list deliveries")
	}
	out := make([]*notificationv1.Notification, len(rows))
	for i, r := range rows {
		out[i] = notificationProto(r, outbox[r.ID])
	}
	return out, nil
}

// errNotificationNotFound answers for a notification that does not exist and for one
// of another user alike, so that ids cannot be probed.
func errNotificationNotFound(cause error) error {
	return fault.Wrap(fault.NotFound, cause, "notification not found")
}

// MarkNotificationRead marks one of the caller's notifications read.
func (s *Server) MarkNotificationRead(ctx context.Context, req *notificationv1.MarkNotificationReadRequest) (*notificationv1.MarkNotificationReadResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	id, ok := parseID(req.GetNotificationId())
	if !ok {
		return nil, errNotificationNotFound(nil)
	}
	row, err := s.store.markRead(ctx, userID, id)
	if errors.Is(err, database.ErrNotFound) {
		return nil, errNotificationNotFound(err)
	}
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not mark the notification read")
	}
	n, err := s.withDeliveries(ctx, []dbsqlc.Notification{row})
	if err != nil {
		return nil, err
	}
	return &notificationv1.MarkNotificationReadResponse{Notification: n[0]}, nil
}

// MarkAllNotificationsRead marks the caller's unread notifications read, within the
// request's filters.
func (s *Server) MarkAllNotificationsRead(ctx context.Context, req *notificationv1.MarkAllNotificationsReadRequest) (*notificationv1.MarkAllNotificationsReadResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	params := dbsqlc.NotificationMarkAllReadParams{UserID: &userID}
	if req.GetCategory() != notificationv1.Category_CATEGORY_UNSPECIFIED {
		params.Category = categoryNames[req.GetCategory()]
	}
	if req.GetBeforeTime() != nil {
		before := req.GetBeforeTime().AsTime()
		params.Before = &before
	}
	n, err := s.store.markAllRead(ctx, params)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not mark notifications read")
	}
	unread, err := s.store.unreadCount(ctx, userID)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not count notifications")
	}
	marked := int32(math.MaxInt32) // the proto's count saturates rather than wraps
	if n >= 0 && n < math.MaxInt32 {
		marked = int32(n)
	}
	return &notificationv1.MarkAllNotificationsReadResponse{MarkedCount: marked, UnreadCount: unread}, nil
}
