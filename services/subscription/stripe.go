package subscription

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/fault"
)

// errBillingOff answers the RPCs that need Stripe when no key is set.
var errBillingOff = fault.New(fault.FailedPrecondition, "billing is not configured: set BACKPLANE_STRIPE_SECRET_KEY")

// errStripeDown answers when Stripe cannot be reached after every retry.
var errStripeDown = fault.New(fault.Unavailable, "Stripe is unreachable; retry shortly")

// retryPolicy is how calls to Stripe are retried: attempts in all, each bounded by
// timeout, the waits between them growing from first.
type retryPolicy struct {
	attempts int
	timeout  time.Duration
	first    time.Duration
}

// defaultRetry spends at most about 3×10 s on a call that keeps timing out, and about
// 0.25 + 0.5 s of waiting on one that keeps failing fast.
var defaultRetry = retryPolicy{attempts: 3, timeout: 10 * time.Second, first: 250 * time.Millisecond}

// stripeAPI is the service's edge to Stripe: stripe-go's client with its own retries
// off, and every call made through call, which bounds, retries and classifies it.
type stripeAPI struct {
	api   *client.API
	retry retryPolicy
	log   *slog.Logger
}

// newStripeAPI returns a client of the API at base with key. Requests are traced.
func newStripeAPI(key, base string, retry retryPolicy, tp trace.TracerProvider, log *slog.Logger) *stripeAPI {
	httpClient := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(tp))}
	backends := stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:        stripe.String(base),
		HTTPClient: httpClient,
		// call retries, with the idempotency key each call carries; two retry loops
		// would multiply each other.
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return &stripeAPI{api: client.New(key, backends), retry: retry, log: log}
}

// call runs op, which makes one Stripe request with the context it is given, and
// retries it with backoff when Stripe answers 429 or 5xx or cannot be reached. A
// mutating op must carry an idempotency key, so that a retry is the same request.
// Stripe unreachable after the last attempt is errStripeDown; Stripe refusing the
// request is returned as a *stripe.Error for the caller to classify.
func (s *stripeAPI) call(ctx context.Context, what string, op func(ctx context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.retry.timeout)
		err = op(actx)
		cancel()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
		if attempt >= s.retry.attempts {
			s.log.WarnContext(ctx, "stripe unreachable", "call", what, "attempts", attempt, "error", err.Error())
			return fault.Wrap(fault.Unavailable, err, errStripeDown.Message)
		}
		wait := s.retry.first << (attempt - 1)
		wait += rand.N(wait/2 + 1) //nolint:gosec // G404: jitter, so that replicas do not retry in step; nothing secret.
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// retryable reports whether a failed Stripe request may succeed if made again: Stripe
// said 429 (rate limit, lock timeout) or 5xx, or never answered.
func retryable(err error) bool {
	if se, ok := errors.AsType[*stripe.Error](err); ok {
		return se.HTTPStatusCode == http.StatusTooManyRequests || se.HTTPStatusCode >= 500 || se.HTTPStatusCode == 0
	}
	return true
}

// stripeFault turns an error of call into the service's vocabulary: unreachable stays
// UNAVAILABLE; a card declined is the caller's to fix, with Stripe's message, which is
// written for customers; anything else Stripe refused is a fault of ours or of the
// deployment's Stripe account, logged with Stripe's message and answered INTERNAL.
func stripeFault(err error, message string) error {
	if err == nil {
		return nil
	}
	if fe, ok := errors.AsType[*fault.Error](err); ok {
		return fe
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	se, ok := errors.AsType[*stripe.Error](err)
	switch {
	case ok && se.Type == stripe.ErrorTypeCard:
		return fault.Wrap(fault.FailedPrecondition, err, se.Msg)
	case ok && se.Type == stripe.ErrorTypeIdempotency:
		return fault.Wrap(fault.InvalidArgument, err, "this Idempotency-Key was used for a different request")
	}
	return fault.Wrap(fault.Internal, err, message)
}

// missing reports whether Stripe answered that the object does not exist.
func missing(err error) bool {
	se, ok := errors.AsType[*stripe.Error](err)
	return ok && (se.HTTPStatusCode == http.StatusNotFound || se.Code == stripe.ErrorCodeResourceMissing)
}

// idempotencyKey derives a Stripe idempotency key from what a call does: the same
// operation on the same state gives the same key, so a retried RPC is one request to
// Stripe, while the same operation after the state moved on is a new one. Stripe keeps
// keys for at least 24 hours and accepts up to 255 characters.
func idempotencyKey(op string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		// Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
		h.Write(fmt.Appendf(nil, "%d:%s", len(p), p))
	}
	return "backplane-" + op + "-" + hex.EncodeToString(h.Sum(nil))[:40]
}

// params returns stripe-go's request parameters bound to ctx, with key as the
// idempotency key when it is not empty.
func params(ctx context.Context, key string) stripe.Params {
	p := stripe.Params{Context: ctx}
	if key != "" {
		p.IdempotencyKey = stripe.String(key)
	}
	return p
}
