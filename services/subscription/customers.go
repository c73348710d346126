package subscription

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
)

// customerOf returns the user's Stripe customer id, creating the customer on first need
// with the user's id in its metadata. It is race-safe twice over: replicas creating the
// same user's customer take turns on an advisory lock held until the row is committed,
// and the creation carries an idempotency key derived from the user, so that a retry
// after a lost answer, or a second process past the lock's holder, gets the customer
// Stripe already made.
func (s *Server) customerOf(ctx context.Context, userID uuid.UUID) (string, error) {
	if c, err := s.store.customer(ctx, userID); err == nil {
		return c.StripeCustomerID, nil
	} else if !errors.Is(err, database.ErrNotFound) {
		return "", fault.Wrap(fault.Internal, err, "could not read the billing account")
	}
	var id string
	err := s.store.inTx(ctx, func(tx *store) error {
		if err := tx.lockCustomer(ctx, userID); err != nil {
			return err
		}
		if c, err := tx.customer(ctx, userID); err == nil {
			id = c.StripeCustomerID
			return nil
		} else if !errors.Is(err, database.ErrNotFound) {
			return err
		}
		var cust *stripe.Customer
		err := s.stripe.call(ctx, "create customer", func(ctx context.Context) error {
			p := &stripe.CustomerParams{Params: params(ctx, idempotencyKey("customer", userID.String()))}
			p.AddMetadata("user_id", userID.String())
			var err error
			cust, err = s.stripe.api.Customers.New(p)
			return err
		})
		if err != nil {
			return err
		}
		id = cust.ID
		return tx.addCustomer(ctx, userID, cust.ID)
	})
	if err != nil {
		return "", stripeFault(err, "could not create the billing account")
	}
	return id, nil
}

// knownCustomer returns the user's Stripe customer id, or "" when the user never needed
// one.
func (s *Server) knownCustomer(ctx context.Context, userID uuid.UUID) (string, error) {
	c, err := s.store.customer(ctx, userID)
	switch {
	case errors.Is(err, database.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fault.Wrap(fault.Internal, err, "could not read the billing account")
	}
	return c.StripeCustomerID, nil
}
