package auth

import (
	"context"

	"google.golang.org/grpc"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
)

// notifier sends the auth service's security emails. It is the service's edge to the
// notification service, so tests record emails instead of sending them.
type notifier interface {
	Send(ctx context.Context, m securityEmail) error
}

// securityEmail is one security email, and the River job that sends it (jobs.go).
type securityEmail struct {
	// UserID addresses the account.
	UserID string `json:"user_id"`
	// Template names the notification template: verify_email, reset_password,
	// password_changed, new_sign_in or signup_attempt.
	Template string `json:"template"`
	// Data fills the template. Links carry single-use tokens: never log Data.
	Data map[string]string `json:"data"`
	// IdempotencyKey makes retries send once.
	IdempotencyKey string `json:"idempotency_key"`
}

// notificationClient sends through the notification service's INTERNAL Send RPC.
type notificationClient struct {
	client notificationv1.NotificationServiceClient
	opts   []grpc.CallOption
}

// Send asks the notification service to email the user. Security emails go to the
// account's address whatever the user's preferences.
func (n notificationClient) Send(ctx context.Context, mail securityEmail) error {
	_, err := n.client.Send(ctx, &notificationv1.SendRequest{
		Recipient:      &notificationv1.SendRequest_UserId{UserId: mail.UserID},
		Template:       mail.Template,
		Data:           mail.Data,
		Category:       notificationv1.Category_CATEGORY_SECURITY,
		Channels:       []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL},
		IdempotencyKey: mail.IdempotencyKey,
	}, n.opts...)
	return err
}
