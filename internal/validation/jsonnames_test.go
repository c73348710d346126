package validation_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/validation"
)

func TestJSONPath(t *testing.T) {
	t.Parallel()
	update := (&authv1.UpdateCurrentUserRequest{}).ProtoReflect().Descriptor()
	prefs := (&notificationv1.UpdateNotificationPreferencesRequest{}).ProtoReflect().Descriptor()
	send := (&notificationv1.SendRequest{}).ProtoReflect().Descriptor()
	for _, tc := range []struct {
		in, want string
	}{
		{"user.display_name", "user.displayName"},
		{"update_mask", "updateMask"},
		{"preferences.preferences[3].category", "preferences.preferences[3].category"},
		{"preferences.update_time", "preferences.updateTime"},
		{"user.no_such_field.deeper", "user.no_such_field.deeper"},
		{"", ""},
	} {
		md := update
		if tc.in[:min(len(tc.in), 11)] == "preferences" {
			md = prefs
		}
		require.Equal(t, tc.want, validation.JSONPath(md, tc.in), tc.in)
	}
	require.Equal(t, `data["some.key]"]`, validation.JSONPath(send, `data["some.key]"]`), "a map key is copied as written")
	require.Equal(t, "userId", validation.JSONPath(send, "user_id"))
}
