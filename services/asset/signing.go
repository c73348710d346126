package asset

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// downloadURLTTL is how long a signed download URL works; the contract promises at
// most 15 minutes.
const downloadURLTTL = 10 * time.Minute

// urlSigner signs and checks download URLs. A signature covers the asset, the SHA-256
// of its bytes and the expiry, so a URL names exactly one version of one file for a
// short while.
type urlSigner struct {
	key []byte
}

// sign returns the signature of a URL for asset id with bytes of digest sha, expiring
// at expires (Unix seconds).
func (u *urlSigner) sign(id uuid.UUID, sha string, expires int64) string {
	mac := hmac.New(sha256.New, u.key)
	mac.Write([]byte("backplane asset download\x00"))
	mac.Write([]byte(id.String()))
	mac.Write([]byte{0})
	mac.Write([]byte(sha))
	mac.Write([]byte{0})
	mac.Write([]byte(strconv.FormatInt(expires, 10)))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// valid reports whether signature is sign(id, sha, expires) and expires is after now.
func (u *urlSigner) valid(id uuid.UUID, sha string, expires int64, signature string, now time.Time) bool {
	want := u.sign(id, sha, expires)
	ok := hmac.Equal([]byte(want), []byte(signature))
	return ok && now.Unix() < expires
}

// downloadURL is the signed URL of an asset's bytes under base, the public URL, and
// when it expires.
func (u *urlSigner) downloadURL(base string, id uuid.UUID, sha string, now time.Time) (string, time.Time) {
	exp := now.Add(downloadURLTTL).Truncate(time.Second)
	q := url.Values{}
	q.Set("expires", strconv.FormatInt(exp.Unix(), 10))
	q.Set("signature", u.sign(id, sha, exp.Unix()))
	return base + "/v1/assets/" + id.String() + "/content:signed?" + q.Encode(), exp
}
