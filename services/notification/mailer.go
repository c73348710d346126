package notification

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// email is one message ready for a mailer.
type email struct {
	notificationID uuid.UUID
	to             string
	subject        string
	text           string
	html           string
	// unsubscribeURL is the RFC 8058 one-click target; empty for security emails, which
	// cannot be unsubscribed from.
	unsubscribeURL string
}

// mailer hands an email over for delivery and returns the provider's id for it. There
// are two: SendGrid, and the dev mailbox used when no SendGrid key is configured.
type mailer interface {
	send(ctx context.Context, e email) (providerID string, err error)
}

// sendError is a mailer's failure, classified for the retry decision.
type sendError struct {
	// permanent means retrying cannot help, such as a 400 for a malformed address.
	permanent bool
	// retryAfter is the provider's own wait, from Retry-After or X-RateLimit-Reset;
	// zero when it gave none.
	retryAfter time.Duration
	// msg is the whole story, for logs and the delivery's last_error.
	msg string
	// reason is what the API may show as the delivery's status_reason: what the
	// provider said, without our internals (URLs, hosts, driver errors).
	reason string
}

func (e *sendError) Error() string { return e.msg }

// retryableError returns err as a sendError that may be retried.
func retryableError(err error) *sendError {
	return &sendError{msg: err.Error(), reason: "temporary failure"}
}

// classify reads a mailer error; an unclassified one is retryable, since a mailer that
// failed in an unexpected way may well succeed later.
func classify(err error) *sendError {
	if se, ok := errors.AsType[*sendError](err); ok {
		return se
	}
	return &sendError{msg: fmt.Sprint(err), reason: "temporary failure"}
}
