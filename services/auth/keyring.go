package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// keyring keeps the token-signing keys in PostgreSQL, so every replica signs with the
// same key and publishes the same JWKS without sharing files. Keys are made under an
// advisory lock by whichever replica first finds one missing. A key is published a
// prepublish period before it starts signing, so every replica and every verifier's
// cache know it before the first token it signs; it signs for the rotation period and
// stays published until the last token it signed has expired.
type keyring struct {
	store    *store
	aead     cipher.AEAD // nil stores keys unsealed
	rotation time.Duration
	tokenTTL time.Duration
	now      func() time.Time
}

// prepublish is how long before taking over a key is published: longer than the reload
// interval of every replica (a minute) and the JWKS refresh of every verifier (5 minutes).
const prepublish = 10 * time.Minute

func newKeyring(st *store, kek []byte, rotation, tokenTTL time.Duration, now func() time.Time) (*keyring, error) {
	k := &keyring{store: st, rotation: rotation, tokenTTL: tokenTTL, now: now}
	if len(kek) > 0 {
		block, err := aes.NewCipher(kek)
		if err != nil {
			return nil, fmt.Errorf("BACKPLANE_KEY_ENCRYPTION_KEY: %w", err)
		}
		if k.aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// plan says which keys are missing: a current one (first start, or a long outage), or
// the successor of a current one that retires within the prepublish period.
func (k *keyring) plan(rows []dbsqlc.SigningKey) (current *dbsqlc.SigningKey, needCurrent, needNext bool) {
	now := k.now()
	var latest *dbsqlc.SigningKey
	for i := range rows {
		r := &rows[i]
		if latest == nil || r.RetireTime.After(latest.RetireTime) {
			latest = r
		}
		if current == nil && !r.ActivateTime.After(now) && r.RetireTime.After(now) {
			current = r // rows come newest activation first
		}
	}
	if current == nil {
		return nil, true, false
	}
	return current, false, latest.RetireTime.Sub(now) < prepublish
}

// load returns the current key set, creating the current or the next key as needed.
func (k *keyring) load(ctx context.Context) (*authn.KeySet, error) {
	rows, err := k.store.liveSigningKeys(ctx, k.now())
	if err != nil {
		return nil, err
	}
	if _, needCurrent, needNext := k.plan(rows); needCurrent || needNext {
		err = k.store.inTx(ctx, func(tx *store) error {
			if err := tx.lockSigningKeys(ctx); err != nil {
				return err
			}
			// Another replica may have made them while we waited for the lock.
			if rows, err = tx.liveSigningKeys(ctx, k.now()); err != nil {
				return err
			}
			current, needCurrent, needNext := k.plan(rows)
			activate := k.now()
			switch {
			case needCurrent:
			case needNext:
				activate = current.RetireTime
				for _, r := range rows {
					activate = maxTime(activate, r.RetireTime)
				}
			default:
				return nil
			}
			if _, err := k.create(ctx, tx, activate); err != nil {
				return err
			}
			rows, err = tx.liveSigningKeys(ctx, k.now())
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("create signing key: %w", err)
		}
	}
	current, _, _ := k.plan(rows)
	if current == nil {
		return nil, errors.New("no current signing key")
	}
	signing, err := k.open(*current)
	if err != nil {
		return nil, err
	}
	var published []ed25519.PublicKey
	for _, row := range rows {
		if row.ID == current.ID {
			continue
		}
		priv, err := k.open(row)
		if err != nil {
			return nil, err
		}
		pub, ok := priv.Public().(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("signing key %s: public half is %T, not ed25519", row.ID, priv.Public())
		}
		published = append(published, pub)
	}
	return authn.NewKeySet(authn.SigningKey{ID: current.ID, Private: signing}, published...)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (k *keyring) create(ctx context.Context, tx *store, activate time.Time) (dbsqlc.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return dbsqlc.SigningKey{}, err
	}
	id := authn.KeyID(pub)
	stored, sealed := priv.Seed(), false
	if k.aead != nil {
		nonce := make([]byte, k.aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return dbsqlc.SigningKey{}, err
		}
		// The key id is the associated data, so a sealed key cannot be swapped between rows.
		stored, sealed = k.aead.Seal(nonce, nonce, stored, []byte(id)), true
	}
	retire := activate.Add(k.rotation)
	return tx.createSigningKey(ctx, dbsqlc.SigningKeyInsertParams{
		ID:           id,
		PrivateKey:   stored,
		Sealed:       sealed,
		ActivateTime: activate,
		RetireTime:   retire,
		// Published until every token it signed has expired, with a margin for skew.
		ExpireTime: retire.Add(k.tokenTTL + time.Minute),
	})
}

func (k *keyring) open(row dbsqlc.SigningKey) (ed25519.PrivateKey, error) {
	seed := row.PrivateKey
	if row.Sealed {
		if k.aead == nil {
			return nil, errors.New("BACKPLANE_KEY_ENCRYPTION_KEY: required to open the stored signing keys")
		}
		n := k.aead.NonceSize()
		if len(seed) < n {
			return nil, fmt.Errorf("signing key %s: sealed key too short", row.ID)
		}
		var err error
		if seed, err = k.aead.Open(nil, seed[:n], seed[n:], []byte(row.ID)); err != nil {
			return nil, fmt.Errorf("BACKPLANE_KEY_ENCRYPTION_KEY: cannot open signing key %s: wrong key?", row.ID)
		}
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key %s: malformed", row.ID)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// keep reloads the keys every interval until ctx ends, rotating the issuer's set, so
// every replica picks up a rotation within one interval.
func (k *keyring) keep(ctx context.Context, issuer *authn.Issuer, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ks, err := k.load(ctx)
			if err != nil {
				onErr(err)
				continue
			}
			issuer.Rotate(ks)
		}
	}
}
