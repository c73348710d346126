package notification

import (
	"encoding/json"

	"google.golang.org/protobuf/types/known/timestamppb"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/services/notification/dbsqlc"
)

// The stored names of categories, channels and statuses. Text rather than the enum numbers,
// so the tables read on their own.
const (
	categorySecurity = "security"

	channelEmail = "email"
	channelInApp = "in_app"

	statusPending    = "pending"
	statusSent       = "sent"
	statusDelivered  = "delivered"
	statusBounced    = "bounced"
	statusDropped    = "dropped"
	statusFailed     = "failed"
	statusSuppressed = "suppressed"
)

var categoryNames = map[notificationv1.Category]string{
	notificationv1.Category_CATEGORY_SECURITY: categorySecurity,
	notificationv1.Category_CATEGORY_ACCOUNT:  "account",
	notificationv1.Category_CATEGORY_BILLING:  "billing",
	notificationv1.Category_CATEGORY_USAGE:    "usage",
	notificationv1.Category_CATEGORY_PRODUCT:  "product",
}

var channelNames = map[notificationv1.Channel]string{
	notificationv1.Channel_CHANNEL_EMAIL:  channelEmail,
	notificationv1.Channel_CHANNEL_IN_APP: channelInApp,
}

var statusValues = map[string]notificationv1.DeliveryStatus{
	statusPending:    notificationv1.DeliveryStatus_DELIVERY_STATUS_PENDING,
	statusSent:       notificationv1.DeliveryStatus_DELIVERY_STATUS_SENT,
	statusDelivered:  notificationv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED,
	statusBounced:    notificationv1.DeliveryStatus_DELIVERY_STATUS_BOUNCED,
	statusDropped:    notificationv1.DeliveryStatus_DELIVERY_STATUS_DROPPED,
	statusFailed:     notificationv1.DeliveryStatus_DELIVERY_STATUS_FAILED,
	statusSuppressed: notificationv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED,
}

func categoryValue(name string) notificationv1.Category {
	for v, n := range categoryNames {
		if n == name {
			return v
		}
	}
	return notificationv1.Category_CATEGORY_UNSPECIFIED
}

func channelValue(name string) notificationv1.Channel {
	for v, n := range channelNames {
		if n == name {
			return v
		}
	}
	return notificationv1.Channel_CHANNEL_UNSPECIFIED
}

// notificationProto converts a stored notification and its delivery rows for the API.
func notificationProto(n dbsqlc.Notification, deliveries []dbsqlc.Delivery) *notificationv1.Notification {
	out := &notificationv1.Notification{
		Id:         n.ID.String(),
		Category:   categoryValue(n.Category),
		Template:   n.Template,
		Title:      n.Title,
		Body:       n.BodyText,
		Read:       n.ReadAt != nil,
		CreateTime: timestamppb.New(n.CreatedAt),
	}
	// The data was marshalled from a map[string]string by Send; a row that does not
	// decode shows without it rather than failing the whole page.
	_ = json.Unmarshal(n.Data, &out.Data)
	for _, c := range n.Channels {
		out.Channels = append(out.Channels, channelValue(c))
	}
	for _, o := range deliveries {
		out.Deliveries = append(out.Deliveries, &notificationv1.Delivery{
			Channel:      channelValue(o.Channel),
			Status:       statusValues[o.Status],
			StatusReason: o.StatusReason,
			UpdateTime:   timestamppb.New(o.UpdatedAt),
		})
	}
	if n.ReadAt != nil {
		out.ReadTime = timestamppb.New(*n.ReadAt)
	}
	return out
}
