package notification

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/notification/dbsqlc"
)

// preferenceOrder lists categories and channels in the order every answer uses.
var (
	categoryOrder = []notificationv1.Category{
		notificationv1.Category_CATEGORY_SECURITY, notificationv1.Category_CATEGORY_ACCOUNT,
		notificationv1.Category_CATEGORY_BILLING, notificationv1.Category_CATEGORY_USAGE,
		notificationv1.Category_CATEGORY_PRODUCT,
	}
	channelOrder = []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL, notificationv1.Channel_CHANNEL_IN_APP}
)

// GetNotificationPreferences returns every category and channel for the caller, with the
// defaults (everything on) filled in.
func (s *Server) GetNotificationPreferences(ctx context.Context, _ *notificationv1.GetNotificationPreferencesRequest) (*notificationv1.GetNotificationPreferencesResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.store.preferences(ctx, userID)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not read preferences")
	}
	return &notificationv1.GetNotificationPreferencesResponse{Preferences: preferencesProto(rows)}, nil
}

// UpdateNotificationPreferences writes the entries sent; the others keep their value.
// Security is always delivered, so switching it off is refused.
func (s *Server) UpdateNotificationPreferences(ctx context.Context, req *notificationv1.UpdateNotificationPreferencesRequest) (*notificationv1.UpdateNotificationPreferencesResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	var entries []dbsqlc.PreferenceUpsertParams
	for _, p := range req.GetPreferences().GetPreferences() {
		category, okCat := categoryNames[p.GetCategory()]
		channel, okChan := channelNames[p.GetChannel()]
		if !okCat || !okChan {
			return nil, badRequest("preferences", "each entry needs a category and a channel")
		}
		if category == categorySecurity {
			if !p.GetEnabled() {
				return nil, badRequest("preferences", "security notifications cannot be switched off")
			}
			continue // always on: nothing to store
		}
		entries = append(entries, dbsqlc.PreferenceUpsertParams{UserID: userID, Category: category, Channel: channel, Enabled: p.GetEnabled()})
	}
	if err := s.store.setPreferences(ctx, entries); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not write preferences")
	}
	rows, err := s.store.preferences(ctx, userID)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not read preferences")
	}
	return &notificationv1.UpdateNotificationPreferencesResponse{Preferences: preferencesProto(rows)}, nil
}

// Unsubscribe switches off one category's email for the recipient a signed token names:
// a user's preference, or a suppression for a bare address.
func (s *Server) Unsubscribe(ctx context.Context, req *notificationv1.UnsubscribeRequest) (*notificationv1.UnsubscribeResponse, error) {
	claim, err := s.links.signer.verify(req.GetToken())
	if err != nil || claim.Category == categorySecurity || categoryValue(claim.Category) == notificationv1.Category_CATEGORY_UNSPECIFIED {
		// Security tokens are never issued; one that claims it was altered.
		return nil, fault.Wrap(fault.InvalidArgument, errors.Join(err, errBadToken), "the unsubscribe link is not valid")
	}
	if claim.UserID != nil {
		err = s.store.setPreferences(ctx, []dbsqlc.PreferenceUpsertParams{{
			UserID: *claim.UserID, Category: claim.Category, Channel: channelEmail, Enabled: false,
		}})
	} else {
		err = s.store.suppress(ctx, claim.Email, claim.Category, "unsubscribed")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not unsubscribe")
	}
	return &notificationv1.UnsubscribeResponse{Preference: &notificationv1.NotificationPreference{
		Category: categoryValue(claim.Category), Channel: notificationv1.Channel_CHANNEL_EMAIL, Enabled: false,
	}}, nil
}

// preferencesProto fills in every category and channel: the stored value where there is
// one, on otherwise, and security locked on.
func preferencesProto(rows []dbsqlc.Preference) *notificationv1.NotificationPreferences {
	type key struct{ category, channel string }
	stored := map[key]bool{}
	var updated time.Time
	for _, r := range rows {
		stored[key{r.Category, r.Channel}] = r.Enabled
		if r.UpdatedAt.After(updated) {
			updated = r.UpdatedAt
		}
	}
	out := &notificationv1.NotificationPreferences{}
	for _, cat := range categoryOrder {
		for _, ch := range channelOrder {
			enabled, ok := stored[key{categoryNames[cat], channelNames[ch]}]
			locked := cat == notificationv1.Category_CATEGORY_SECURITY
			out.Preferences = append(out.Preferences, &notificationv1.NotificationPreference{
				Category: cat, Channel: ch, Enabled: !ok || enabled || locked, Locked: locked,
			})
		}
	}
	if !updated.IsZero() {
		out.UpdateTime = timestamppb.New(updated)
	}
	return out
}
