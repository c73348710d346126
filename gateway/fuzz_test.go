package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/protobuf/proto"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
)

// FuzzRESTRequests throws arbitrary methods, paths, queries and bodies at the REST front
// door. Whatever arrives, the edge answers with a JSON error or a real response, never
// a 500 of its own making and never a panic. `make test` runs the seed corpus; run
// `go test -fuzz=FuzzRESTRequests ./gateway` to search further.
func FuzzRESTRequests(f *testing.F) {
	seeds := []struct{ method, target, body string }{
		{"GET", "/v1/users/me", ""},
		{"GET", "/v1/users/me?unknown=1&x=%zz", ""},
		{"POST", "/v1/auth/signup", `{"email":"a@b.co","password":"correct horse","displayName":"A"}`},
		{"POST", "/v1/auth/signup", `{"email":`},
		{"POST", "/v1/auth/signup", `[1,2,3]`},
		{"POST", "/v1/auth/signup", `{"email":"a@b.co","password":123}`},
		{"DELETE", "/v1/auth/sessions/not-a-uuid", ""},
		{"DELETE", "/v1/auth/sessions/%00", ""},
		{"GET", "/v1/admin/users?pageSize=-5&pageToken=" + strings.Repeat("x", 600), ""},
		{"GET", "/v1/admin/users?pageSize=99999999999999999999", ""},
		{"POST", "/v1/notifications/x:markRead", "{}"},
		{"GET", "/v1/assets?pageSize=1&filter=%E2%9C%93", ""},
		{"PATCH", "/v1/users/me?updateMask=email,roles", `{"email":"evil@x.co","roles":["ROLE_ADMIN"]}`},
		{"POST", "/webhooks/stripe", "\x00\x01\x02"},
		{"GET", "/../../etc/passwd", ""},
		{"OPTIONS", "/v1/auth/login", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.body)
	}
	h := setup(f)
	handler := h.restHandler
	f.Fuzz(func(t *testing.T, method, target, body string) {
		if !validMethod(method) || !strings.HasPrefix(target, "/") {
			return
		}
		req, err := http.NewRequestWithContext(t.Context(), method, "http://edge"+target, strings.NewReader(body))
		if err != nil {
			return // not a request any client could send
		}
		req.RemoteAddr = "127.0.0.1:1234"
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		resp := rec.Result()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusInternalServerError {
			t.Fatalf("%s %q answered 500: %s", method, target, raw)
		}
		if resp.StatusCode >= 400 && len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			var st struct {
				Code    *int   `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(raw, &st); err != nil || st.Code == nil {
				t.Fatalf("%s %q answered %d with a body that is not a status: %s", method, target, resp.StatusCode, raw)
			}
		}
	})
}

func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD":
		return true
	}
	return false
}

// FuzzQueryDecoding feeds arbitrary query strings to grpc-gateway's query decoding into
// our request messages: it must fail cleanly or succeed, never panic.
func FuzzQueryDecoding(f *testing.F) {
	for _, q := range []string{
		"pageSize=10&pageToken=abc",
		"pageSize=-1",
		"pageSize=1e99",
		"unreadOnly=true&category=CATEGORY_BILLING",
		"category=999",
		"updateMask=a,b,c",
		"user.displayName=%ff%fe",
		"a.b.c.d.e=1",
		"filter=%",
	} {
		f.Add(q)
	}
	msgs := []func() proto.Message{
		func() proto.Message { return &authv1.ListUsersRequest{} },
		func() proto.Message { return &notificationv1.ListNotificationsRequest{} },
		func() proto.Message { return &assetv1.ListAssetsRequest{} },
		func() proto.Message { return &authv1.UpdateCurrentUserRequest{} },
	}
	f.Fuzz(func(t *testing.T, raw string) {
		values, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, newMsg := range msgs {
			_ = runtime.PopulateQueryParameters(newMsg(), values, utilities.NewDoubleArray(nil))
		}
	})
}
