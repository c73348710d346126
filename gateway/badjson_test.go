package gateway_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// violation is the one field violation of a 400's BadRequest.
func violation(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	require.EqualValues(t, codes.InvalidArgument, body["code"])
	details := body["details"].([]any)
	require.Len(t, details, 1)
	detail := details[0].(map[string]any)
	require.Equal(t, "type.googleapis.com/google.rpc.BadRequest", detail["@type"])
	violations := detail["fieldViolations"].([]any)
	require.Len(t, violations, 1)
	return violations[0].(map[string]any)
}

func TestRESTBodiesThatDoNotDecodeNameTheField(t *testing.T) {
	t.Parallel()
	h := setup(t)
	for _, tc := range []struct {
		name, method, path, body   string
		field, reason, description string
	}{
		{
			name: "an unknown field", method: http.MethodPost, path: "/v1/auth/signup",
			body:  `{"email":"ada@example.com","password":"correct horse","displayName":"Ada","bogus":1}`,
			field: "bogus", reason: "UNKNOWN_FIELD", description: "unknown field",
		},
		{
			name: "an unknown field in a body that is one field", method: http.MethodPatch, path: "/v1/users/me",
			body:  `{"displayName":"Ada","colour":"blue"}`,
			field: "colour", reason: "UNKNOWN_FIELD", description: "unknown field",
		},
		{
			name: "an unknown field inside a list", method: http.MethodPatch, path: "/v1/notification-preferences",
			body:  `{"preferences":[{"category":"CATEGORY_BILLING","enabled":true},{"category":"CATEGORY_BILLING","enabld":false}]}`,
			field: "preferences[1].enabld", reason: "UNKNOWN_FIELD", description: "unknown field",
		},
		{
			name: "a value of the wrong type", method: http.MethodPost, path: "/v1/auth/signup",
			body:  `{"email":5,"password":"correct horse","displayName":"Ada"}`,
			field: "email", reason: "INVALID_VALUE", description: "expects a string",
		},
		{
			name: "a field written with its proto name", method: http.MethodPost, path: "/v1/auth/signup",
			body:  `{"email":"ada@example.com","password":"correct horse","display_name":true}`,
			field: "display_name", reason: "INVALID_VALUE", description: "expects a string",
		},
		{
			name: "not JSON", method: http.MethodPost, path: "/v1/auth/signup",
			body:   `{"email":`,
			reason: "INVALID_JSON", description: "the request body is not valid JSON",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.do(t, tc.method, tc.path, tc.body, nil)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			v := violation(t, body)
			require.Equal(t, tc.field, v["field"], "the field as the client wrote it")
			require.Equal(t, tc.reason, v["reason"])
			require.Equal(t, tc.description, v["description"])
			require.NotContains(t, body["message"], "proto:", "not the parser's wording")
			require.Contains(t, body["message"], tc.description)
		})
	}
	require.Zero(t, h.backend.signups.Load(), "nothing that did not decode reached the service")
}

func TestRESTViolationsInABodyThatIsOneFieldNameItsMembers(t *testing.T) {
	t.Parallel()
	h := setup(t)
	// PATCH /v1/users/me takes the request's user field as its body: the client wrote
	// {"displayName": ""}, not {"user": {"display_name": ""}}.
	resp, body := h.do(t, http.MethodPatch, "/v1/users/me", `{"displayName":""}`, nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	v := violation(t, body)
	require.Equal(t, "displayName", v["field"])
	require.Equal(t, "invalid request: displayName: "+v["description"].(string), body["message"])
}
