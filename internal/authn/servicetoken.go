package authn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"
)

// ServiceTokenHeader carries a service token in gRPC metadata.
const ServiceTokenHeader = "x-backplane-service-token" //nolint:gosec // G101: a metadata key's name, not a credential

// ServiceAuthenticator proves that a caller is one of our services, for INTERNAL RPCs.
// HMACServiceTokens checks the token alone; mtls.Authenticator, with mutual TLS on,
// also requires the caller's certificate to name the service the token names.
type ServiceAuthenticator interface {
	// AuthenticateService returns the calling service's name, or an error wrapping
	// ErrInvalidToken when the caller is not one of ours.
	AuthenticateService(ctx context.Context) (string, error)
}

// HMACServiceTokens mints and checks short-lived service tokens signed with a secret
// every service shares (BACKPLANE_SERVICE_TOKEN_SECRET). A token is
// "v1.<service>.<unix expiry>.<base64url HMAC-SHA256>"; a user's token can never pass
// for one, because it is neither in this header nor signed with this secret.
type HMACServiceTokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time

	// checked remembers tokens whose signature verified, and until when each is good,
	// so that the same token, which a caller sends for half its life, is verified once.
	// Only tokens signed with the secret this process holds enter it.
	mu      sync.Mutex
	checked map[string]checkedToken
}

// checkedToken is what a verified service token says.
type checkedToken struct {
	service string
	expires time.Time
}

// checkedMax bounds the remembered tokens: each piece mints about two a minute, so
// reaching it means many callers; the cache then starts over, which costs only
// re-verification.
const checkedMax = 4096

// minServiceSecret is the shortest secret accepted: 256 bits.
const minServiceSecret = 32

// NewHMACServiceTokens returns a minter and checker of tokens that live for ttl.
func NewHMACServiceTokens(secret []byte, ttl time.Duration, now func() time.Time) (*HMACServiceTokens, error) {
	if len(secret) < minServiceSecret {
		return nil, fmt.Errorf("authn: the service token secret must be at least %d bytes", minServiceSecret)
	}
	if ttl <= 0 {
		return nil, errors.New("authn: the service token lifetime must be positive")
	}
	if now == nil {
		now = time.Now
	}
	return &HMACServiceTokens{secret: append([]byte(nil), secret...), ttl: ttl, now: now, checked: map[string]checkedToken{}}, nil
}

func (h *HMACServiceTokens) mac(payload string) string {
	m := hmac.New(sha256.New, h.secret)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Mint returns a token for service.
func (h *HMACServiceTokens) Mint(service string) (string, error) {
	if service == "" || strings.Contains(service, ".") {
		return "", errors.New("authn: a service name must be non-empty and without dots")
	}
	payload := "v1." + service + "." + strconv.FormatInt(h.now().Add(h.ttl).Unix(), 10)
	return payload + "." + h.mac(payload), nil
}

// Check verifies a token and returns the service it names.
func (h *HMACServiceTokens) Check(token string) (string, error) {
	now := h.now()
	h.mu.Lock()
	c, ok := h.checked[token]
	h.mu.Unlock()
	if ok {
		if !now.Before(c.expires) {
			return "", ErrInvalidToken
		}
		return c.service, nil
	}
	parts := strings.Split(token, ".")
	if len(parts) != 4 || parts[0] != "v1" || parts[1] == "" {
		return "", ErrInvalidToken
	}
	payload := strings.Join(parts[:3], ".")
	if !hmac.Equal([]byte(parts[3]), []byte(h.mac(payload))) {
		return "", ErrInvalidToken
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return "", ErrInvalidToken
	}
	// A token that claims to outlive the configured lifetime was not minted by us.
	if time.Unix(exp, 0).After(now.Add(h.ttl + leeway)) {
		return "", ErrInvalidToken
	}
	h.mu.Lock()
	if len(h.checked) >= checkedMax {
		clear(h.checked)
	}
	h.checked[token] = checkedToken{service: parts[1], expires: time.Unix(exp, 0)}
	h.mu.Unlock()
	return parts[1], nil
}

// AuthenticateService checks the token in the call's metadata.
func (h *HMACServiceTokens) AuthenticateService(ctx context.Context) (string, error) {
	vals := metadata.ValueFromIncomingContext(ctx, ServiceTokenHeader)
	if len(vals) != 1 {
		return "", ErrInvalidToken
	}
	return h.Check(vals[0])
}

// PerRPCCredentials returns gRPC call credentials that attach a token for service to
// every call, for clients of INTERNAL RPCs. A token is minted afresh once half its
// lifetime has passed, not for every call: the signature is the costly part, and a
// token sent for 30 s of its minute is no more exposed than one sent once.
func (h *HMACServiceTokens) PerRPCCredentials(service string) *ServiceTokenCredentials {
	return &ServiceTokenCredentials{tokens: h, service: service}
}

// ServiceTokenCredentials implements credentials.PerRPCCredentials with service tokens.
type ServiceTokenCredentials struct {
	tokens  *HMACServiceTokens
	service string
	current atomic.Pointer[mintedToken]
}

// mintedToken is the token a client attaches until renew.
type mintedToken struct {
	md    map[string]string // the token as request metadata
	renew time.Time
}

// GetRequestMetadata attaches the current token, minting one when it is due.
//
// Every call until renewal gets the same map, which grpc-go only reads (it copies the
// pairs into the call's own headers): a map per call was 1.4 % of the bytes the serve
// gateway allocated per request.
func (c *ServiceTokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	now := c.tokens.now()
	if t := c.current.Load(); t != nil && now.Before(t.renew) {
		return t.md, nil
	}
	tok, err := c.tokens.Mint(c.service)
	if err != nil {
		return nil, err
	}
	md := map[string]string{ServiceTokenHeader: tok}
	c.current.Store(&mintedToken{md: md, renew: now.Add(c.tokens.ttl / 2)})
	return md, nil
}

// RequireTransportSecurity is false: mutual TLS between the pieces is optional
// (BACKPLANE_MTLS_*), and without it the mesh's internal network carries the token.
func (c *ServiceTokenCredentials) RequireTransportSecurity() bool { return false }
