package backplane_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/codes"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/sdk/go/backplane"
)

// The examples run against the `backplane dev` that TestMain starts, at target, where
// TestMain signed up ada@example.com. A program passes its own address, such as
// "api.example.com:443", and drops WithPlaintext: `backplane dev` serves plaintext on
// loopback, production serves TLS.

func Example() {
	ctx := context.Background()
	client, err := backplane.New(target, backplane.WithPlaintext())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	if _, err := client.SignIn(ctx, "ada@example.com", "correct horse battery staple"); err != nil {
		log.Fatal(err)
	}
	// Every call now carries the session's access token, refreshed as it nears expiry.
	me, err := client.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(me.GetUser().GetDisplayName())
	// Output: Ada Lovelace
}

func ExampleWithAPIKey() {
	ctx := context.Background()
	owner, err := backplane.New(target, backplane.WithPlaintext())
	if err != nil {
		log.Fatal(err)
	}
	defer owner.Close()
	if _, err := owner.SignIn(ctx, "ada@example.com", "correct horse battery staple"); err != nil {
		log.Fatal(err)
	}
	key, err := owner.Auth.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{
		DisplayName: "nightly report", Scopes: []string{"profile:read"},
	})
	if err != nil {
		log.Fatal(err)
	}

	// A script keeps the secret in its configuration and authenticates with it alone.
	script, err := backplane.New(target, backplane.WithPlaintext(), backplane.WithAPIKey(key.GetSecret()))
	if err != nil {
		log.Fatal(err)
	}
	defer script.Close()
	me, err := script.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(me.GetUser().GetDisplayName())
	// Output: Ada Lovelace
}

func ExampleError() {
	ctx := context.Background()
	client, err := backplane.New(target, backplane.WithPlaintext())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	_, err = client.SignIn(ctx, "x", "")
	var e *backplane.Error
	if errors.As(err, &e) {
		switch e.Code {
		case codes.InvalidArgument:
			for _, v := range e.FieldViolations {
				fmt.Printf("%s: %s\n", v.Field, v.Description)
			}
		case codes.Unauthenticated:
			fmt.Println("wrong email or password")
		case codes.ResourceExhausted:
			if e.RetryInfo != nil {
				fmt.Println("too many attempts; try again in", e.RetryInfo.Delay)
			}
		default:
			fmt.Println("sign-in failed; request id", e.RequestID)
		}
	}
	// Output:
	// email: must be at least 3 characters
	// password: must be at least 1 characters
}

// fileStore keeps a desktop app's session in a file only its user can read, so that the
// user stays signed in across restarts.
type fileStore struct {
	path string
}

func (s fileStore) Load(context.Context) (backplane.Tokens, error) {
	var t backplane.Tokens
	raw, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return t, err
	}
	return t, json.Unmarshal(raw, &t)
}

func (s fileStore) Save(_ context.Context, t backplane.Tokens) error {
	if t.IsZero() {
		err := os.Remove(s.path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	raw, err := json.Marshal(t) //nolint:gosec // G117: keeping the tokens is this store's purpose; the file is the user's alone (0600)
	if err != nil {
		return err
	}
	return os.WriteFile(s.path, raw, 0o600)
}

func ExampleTokenStore() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "example-app")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store := fileStore{path: filepath.Join(dir, "session.json")}

	// The first run signs in.
	first, err := backplane.New(target, backplane.WithPlaintext(), backplane.WithTokenStore(store))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := first.SignIn(ctx, "ada@example.com", "correct horse battery staple"); err != nil {
		log.Fatal(err)
	}
	_ = first.Close()

	// The next run finds the session in the file.
	next, err := backplane.New(target, backplane.WithPlaintext(), backplane.WithTokenStore(store))
	if err != nil {
		log.Fatal(err)
	}
	defer next.Close()
	me, err := next.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(me.GetUser().GetDisplayName())
	// Output: Ada Lovelace
}

func ExampleWithRetryPolicy() {
	// An interactive app would rather fail fast than wait: two attempts at most, and no
	// waiting on a rate limit for more than two seconds.
	client, err := backplane.New("api.example.com:443", backplane.WithRetryPolicy(backplane.RetryPolicy{
		MaxAttempts:   2,
		MaxRetryDelay: 2 * time.Second,
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
}

func ExampleIdempotent() {
	ctx := context.Background()
	client, err := backplane.New(target, backplane.WithPlaintext())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// A second password reset email does no harm, so this caller lets the client repeat
	// the request after UNAVAILABLE, which it does not do for a POST by default.
	_, err = client.Auth.ForgotPassword(ctx, &authv1.ForgotPasswordRequest{Email: "ada@example.com"}, backplane.Idempotent())
	fmt.Println(err)
	// Output: <nil>
}
