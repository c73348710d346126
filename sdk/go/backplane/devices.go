package backplane

import (
	"strings"
	"sync"
)

// devices remembers, per account, the device token the server handed this client at its
// last sign-in, and sends it with the next: a known device is throttled on its own, so
// strangers' wrong guesses at the account do not lock this client out. The tokens live
// as long as the Client.
type devices struct {
	mu     sync.Mutex
	tokens map[string]string // normalised email → device token
}

func deviceKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func (d *devices) token(email string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tokens[deviceKey(email)]
}

func (d *devices) remember(email, token string) {
	if token == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tokens == nil {
		d.tokens = map[string]string{}
	}
	d.tokens[deviceKey(email)] = token
}
