package subscription

import (
	"context"
	"encoding/base64"
	"strings"

	"github.com/stripe/stripe-go/v76"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
)

// ListInvoices lists the caller's invoices, newest first, one page per call to Stripe.
// The page token carries the last invoice's id, Stripe's own cursor. A caller without a
// Stripe customer has none.
func (s *Server) ListInvoices(ctx context.Context, req *subscriptionv1.ListInvoicesRequest) (*subscriptionv1.ListInvoicesResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.billing(); err != nil {
		return nil, err
	}
	after, err := invoiceCursor(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := int64(req.GetPageSize())
	if size == 0 {
		size = 20
	}
	customer, err := s.knownCustomer(ctx, userID)
	if err != nil || customer == "" {
		return &subscriptionv1.ListInvoicesResponse{}, err
	}
	resp := &subscriptionv1.ListInvoicesResponse{}
	err = s.stripe.call(ctx, "list invoices", func(ctx context.Context) error {
		var page []*subscriptionv1.Invoice
		p := &stripe.InvoiceListParams{Customer: stripe.String(customer)}
		p.Context = ctx
		p.Limit = stripe.Int64(size)
		if after != "" {
			p.StartingAfter = stripe.String(after)
		}
		it := s.stripe.api.Invoices.List(p)
		// Take one page only: the iterator would read the next one on the Next after it.
		for int64(len(page)) < size && it.Next() {
			page = append(page, invoiceToProto(it.Invoice()))
		}
		if err := it.Err(); err != nil {
			return err
		}
		resp.Invoices, resp.NextPageToken = page, ""
		if n := len(page); n > 0 && it.InvoiceList() != nil && it.InvoiceList().HasMore {
			resp.NextPageToken = invoiceToken(page[n-1].GetId())
		}
		return nil
	})
	if err != nil {
		return nil, stripeFault(err, "could not list the invoices")
	}
	return resp, nil
}

func invoiceToken(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("i" + id))
}

func invoiceCursor(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil && len(raw) > 1 && raw[0] == 'i' && strings.HasPrefix(string(raw[1:]), "in_") {
		return string(raw[1:]), nil
	}
	return "", fault.New(fault.InvalidArgument, "page_token is not one this API returned")
}
