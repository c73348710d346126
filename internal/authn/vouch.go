package authn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/backplane/backplane/internal/identity"
)

// VouchHeader carries the edge's word for the caller it has just authenticated, beside its
// service token, so that the service behind it does not verify the same credential again:
// "v1.<expiry ms>.<session live at ms>.<principal>.<HMAC-SHA256>", signed with the
// service-token secret over those fields and the digest of the caller's credential.
//
// A vouch speaks only for the credential the call carries, only in a call that also
// carries a valid service token (and, with mutual TLS, a certificate of ours), and only
// for seconds. A service that meets one it cannot check refuses the call; a call without
// one is verified in full, as a call straight to a service always is.
const VouchHeader = "x-backplane-vouch"

// vouchTTL bounds how long a vouch is good for: one forwarded call, so seconds.
const vouchTTL = 10 * time.Second

// VouchFreshFor is how old the edge's liveness answer carried in a vouch may be for a
// service to take it as its own; an older one sends the service to the live-session
// mirror itself. The edge reuses answers for at most 250 ms (mesh), so in practice the
// edge's answer is used, and an ended session is refused everywhere within that.
const VouchFreshFor = 500 * time.Millisecond

// vouchReuse is how long the edge forwards one vouch for the same credential and the
// same outcome (the same liveness answer) before it mints another: a vouch so reused
// still has most of its seconds to run, and says nothing a fresh one would not.
const vouchReuse = time.Second

// Vouches mints and checks vouches with the secret the service tokens are signed with.
//
// Each side remembers its recent work, since a signature costs more than the rest of
// the exchange: the edge the vouch it minted for a credential, the service the vouches
// that verified and for which credential. Neither memory changes an answer: a vouch is
// reused only for an identical outcome, and a remembered one is still refused once it
// expires or for another credential.
type Vouches struct {
	secret []byte
	now    func() time.Time

	mu sync.Mutex
	// minted is keyed by the digest of the credential it speaks for, so that this memory
	// holds no usable credential (as the claims cache).
	minted  map[[sha256.Size]byte]mintedVouch
	checked map[string]checkedVouch
}

type mintedVouch struct {
	checked Checked
	vouch   string
	at      time.Time
}

type checkedVouch struct {
	// credential is the digest of the credential the vouch speaks for.
	credential [sha256.Size]byte
	checked    Checked
}

// vouchesMax bounds each memory; past it the memory starts over, which costs only
// signatures.
const vouchesMax = 10_000

// Vouches returns the vouch minter and checker that shares h's secret and clock. The
// fields signed differ in shape from a service token's, so neither passes for the other.
func (h *HMACServiceTokens) Vouches() *Vouches {
	return &Vouches{secret: h.secret, now: h.now, minted: map[[sha256.Size]byte]mintedVouch{}, checked: map[string]checkedVouch{}}
}

// Separators inside the principal field; values holding them are never vouched for.
const (
	fieldSep = "\x00"
	listSep  = "\x1f"
)

// Mint returns a vouch for c, the outcome of checking credential, or false when c
// cannot be carried (a value holding a separator): the call then goes without one and
// the service verifies the credential itself.
func (v *Vouches) Mint(c Checked, credential string) (string, bool) {
	p := c.Principal
	for _, f := range append([]string{p.UserID, p.SessionID, p.APIKeyID}, append(p.Roles, p.Scopes...)...) {
		if strings.Contains(f, fieldSep) || strings.Contains(f, listSep) {
			return "", false
		}
	}
	now := v.now()
	key := sha256.Sum256([]byte(credential))
	v.mu.Lock()
	m, ok := v.minted[key]
	v.mu.Unlock()
	if ok && now.Sub(m.at) < vouchReuse && sameChecked(m.checked, c) {
		return m.vouch, true
	}
	exp := now.Add(vouchTTL)
	if !c.Expires.IsZero() && c.Expires.Before(exp) {
		exp = c.Expires
	}
	raw := p.UserID + fieldSep + p.SessionID + fieldSep + p.APIKeyID + fieldSep +
		strings.Join(p.Roles, listSep) + fieldSep + strings.Join(p.Scopes, listSep)
	var liveAt int64
	if !c.LiveAt.IsZero() {
		liveAt = c.LiveAt.UnixMilli()
	}
	signed := "v1." + strconv.FormatInt(exp.UnixMilli(), 10) + "." + strconv.FormatInt(liveAt, 10) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(raw))
	vouch := signed + "." + v.mac(signed, key)
	v.mu.Lock()
	if len(v.minted) >= vouchesMax {
		clear(v.minted)
	}
	v.minted[key] = mintedVouch{checked: c, vouch: vouch, at: now}
	v.mu.Unlock()
	return vouch, true
}

// sameChecked reports whether a and b are one outcome of checking a credential.
func sameChecked(a, b Checked) bool {
	return a.Principal.UserID == b.Principal.UserID && a.Principal.SessionID == b.Principal.SessionID &&
		a.Principal.APIKeyID == b.Principal.APIKeyID && slices.Equal(a.Principal.Roles, b.Principal.Roles) &&
		slices.Equal(a.Principal.Scopes, b.Principal.Scopes) && a.Expires.Equal(b.Expires) && a.LiveAt.Equal(b.LiveAt)
}

// mac signs signed for the credential whose digest is given.
func (v *Vouches) mac(signed string, digest [sha256.Size]byte) string {
	m := hmac.New(sha256.New, v.secret)
	m.Write([]byte(signed))
	m.Write(digest[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Check returns what a vouch says about credential, or ErrInvalidToken when it is not
// ours, has expired, or speaks for another credential.
func (v *Vouches) Check(vouch, credential string) (Checked, error) {
	now := v.now()
	digest := sha256.Sum256([]byte(credential))
	v.mu.Lock()
	m, ok := v.checked[vouch]
	v.mu.Unlock()
	if ok {
		if m.credential != digest || !now.Before(m.checked.Expires) {
			return Checked{}, ErrInvalidToken
		}
		return m.checked, nil
	}
	i := strings.LastIndexByte(vouch, '.')
	if i < 0 {
		return Checked{}, ErrInvalidToken
	}
	signed, mac := vouch[:i], vouch[i+1:]
	if !hmac.Equal([]byte(mac), []byte(v.mac(signed, digest))) {
		return Checked{}, ErrInvalidToken
	}
	parts := strings.Split(signed, ".")
	if len(parts) != 4 || parts[0] != "v1" {
		return Checked{}, ErrInvalidToken
	}
	exp, err1 := strconv.ParseInt(parts[1], 10, 64)
	liveAt, err2 := strconv.ParseInt(parts[2], 10, 64)
	raw, err3 := base64.RawURLEncoding.DecodeString(parts[3])
	if err := errors.Join(err1, err2, err3); err != nil {
		return Checked{}, ErrInvalidToken
	}
	expires := time.UnixMilli(exp)
	// One that claims to outlive the lifetime we mint with was not minted by us.
	if !now.Before(expires) || expires.After(now.Add(vouchTTL+leeway)) {
		return Checked{}, ErrInvalidToken
	}
	f := strings.Split(string(raw), fieldSep)
	if len(f) != 5 || f[0] == "" {
		return Checked{}, ErrInvalidToken
	}
	c := Checked{
		Principal: identity.Principal{UserID: f[0], SessionID: f[1], APIKeyID: f[2], Roles: splitList(f[3]), Scopes: splitList(f[4])},
		Expires:   expires,
	}
	if liveAt != 0 {
		c.LiveAt = time.UnixMilli(liveAt)
	}
	v.mu.Lock()
	if len(v.checked) >= vouchesMax {
		clear(v.checked)
	}
	v.checked[vouch] = checkedVouch{credential: digest, checked: c}
	v.mu.Unlock()
	return c, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, listSep)
}

type vouchKey struct{}

// withVouch records the vouch the edge will send with the call it forwards.
func withVouch(ctx context.Context, vouch string) context.Context {
	return context.WithValue(ctx, vouchKey{}, vouch)
}

// VouchFromContext returns the vouch for the call's caller that the edge's interceptor
// minted, for the edge to send on with the forwarded call; empty when there is none.
func VouchFromContext(ctx context.Context) string {
	v, _ := ctx.Value(vouchKey{}).(string)
	return v
}
