package backplane_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/sdk/go/backplane"
)

const password = "correct horse battery staple"

// newClient returns a plaintext client of the server at addr, closed when the test
// ends.
func newClient(t *testing.T, addr string, opts ...backplane.Option) *backplane.Client {
	t.Helper()
	c, err := backplane.New(addr, append([]backplane.Option{backplane.WithPlaintext()}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newEmail returns an address no other test uses.
func newEmail() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "user-" + hex.EncodeToString(b[:]) + "@example.com"
}

// signUp creates an account and leaves c signed in to it. When the server asks for the
// address to be verified before signing in, it signs in after the sign-up.
func signUp(t *testing.T, c *backplane.Client) string {
	t.Helper()
	ctx := t.Context()
	email := newEmail()
	_, err := c.SignUp(ctx, &authv1.SignUpRequest{Email: email, Password: password, DisplayName: "Test"})
	require.NoError(t, err)
	if _, err := c.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{}); err != nil {
		_, err = c.SignIn(ctx, email, password)
		require.NoError(t, err)
	}
	return email
}

// calls counts the RPCs a client sends, by full method name and outcome. Installed
// with WithDialOptions, it runs inside the client's interceptor and so sees every
// attempt and every refresh.
type calls struct {
	mu         sync.Mutex
	count      map[string]int
	retryDelay time.Duration
}

func (c *calls) option() backplane.Option {
	return backplane.WithDialOptions(grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			err := invoker(ctx, method, req, reply, cc, opts...)
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.count == nil {
				c.count = map[string]int{}
			}
			c.count[method]++
			c.count[method+" "+status.Code(err).String()]++
			for _, d := range status.Convert(err).Details() {
				if ri, ok := d.(*errdetails.RetryInfo); ok {
					c.retryDelay = ri.GetRetryDelay().AsDuration()
				}
			}
			return err
		}))
}

// of returns how many calls of method were sent; with an outcome ("OK",
// "Unauthenticated"), how many ended so.
func (c *calls) of(method string, outcome ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := method
	for _, o := range outcome {
		key += " " + o
	}
	return c.count[key]
}

// lastRetryDelay is the delay asked by the last RetryInfo a call came back with.
func (c *calls) lastRetryDelay() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retryDelay
}

// storeWith returns a memory store holding tokens.
func storeWith(t *testing.T, tokens backplane.Tokens) *backplane.MemoryStore {
	t.Helper()
	s := &backplane.MemoryStore{}
	require.NoError(t, s.Save(t.Context(), tokens))
	return s
}

// asError returns err as an *Error, failing the test if it is not one.
func asError(t *testing.T, err error) *backplane.Error {
	t.Helper()
	var e *backplane.Error
	require.ErrorAs(t, err, &e)
	return e
}

const (
	refreshMethod        = "/backplane.auth.v1.AuthService/RefreshToken"
	getCurrentUserMethod = "/backplane.auth.v1.AuthService/GetCurrentUser"
)
