package backplane

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Tokens are a signed-in session's credentials. They are secrets: fmt and slog print
// them redacted.
type Tokens struct {
	// AccessToken is the short-lived bearer token sent with each call.
	AccessToken string
	// AccessTokenExpiry is when AccessToken stops working, by this machine's clock; zero
	// when unknown, in which case the token is used until the server refuses it.
	AccessTokenExpiry time.Time
	// RefreshToken buys the next pair, once. Whoever holds it holds the session.
	RefreshToken string
}

// IsZero reports whether t holds no credential: nobody is signed in.
func (t Tokens) IsZero() bool {
	return t.AccessToken == "" && t.RefreshToken == ""
}

// String keeps the tokens out of logs and error messages.
func (t Tokens) String() string {
	if t.IsZero() {
		return "backplane.Tokens{}"
	}
	return "backplane.Tokens{REDACTED}"
}

// GoString keeps the tokens out of %#v.
func (t Tokens) GoString() string {
	return t.String()
}

// LogValue keeps the tokens out of slog output, whatever the handler.
func (t Tokens) LogValue() slog.Value {
	return slog.StringValue(t.String())
}

// TokenStore keeps a session's tokens between calls and, if it persists them, between
// runs of the program. The client reads it once, on the first call that needs a
// credential, and writes it whenever the tokens change: after a sign-in, after each
// refresh (the refresh token is single-use, so a store that kept the old one would sign
// the user out at the next start) and with zero Tokens at sign-out or when the session
// ends. Calls are serialised by the client.
//
// A desktop app persists the tokens in the operating system's keychain or in a file
// only its user can read; [MemoryStore] keeps them for the life of the process.
type TokenStore interface {
	// Load returns the saved tokens, or zero Tokens when there are none.
	Load(ctx context.Context) (Tokens, error)
	// Save replaces the saved tokens; zero Tokens means there is no session to keep.
	Save(ctx context.Context, t Tokens) error
}

// MemoryStore is a TokenStore that keeps the tokens in memory only: a restart signs the
// user out. Its zero value is empty and ready to use.
type MemoryStore struct {
	mu     sync.Mutex
	tokens Tokens
}

// Load returns the tokens last saved.
func (m *MemoryStore) Load(context.Context) (Tokens, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokens, nil
}

// Save replaces the tokens.
func (m *MemoryStore) Save(_ context.Context, t Tokens) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens = t
	return nil
}
