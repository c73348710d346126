package auth

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// trustedDeviceTTL is how long a device stays trusted after its last sign-in.
const trustedDeviceTTL = 180 * 24 * time.Hour

// maxTrustedDevices is how many devices one account keeps, the most recently used: a
// client that never sends its token back makes a new device at every sign-in.
const maxTrustedDevices = 20

// trustedDevice returns the id of the account's trusted device that token names, or ""
// when it names none of this account's (a missing, expired or foreign token is simply
// not trusted: the sign-in goes on as an untrusted client's).
func (s *Server) trustedDevice(ctx context.Context, userID uuid.UUID, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	d, err := s.store.trustedDevice(ctx, digest(token))
	if errors.Is(err, database.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if d.UserID != userID {
		return "", nil
	}
	return d.ID.String(), nil
}

// trustDevice records that this device signed in to the account and returns the token
// that says so: the one it presented, if it was the account's, or a new one.
func (s *Server) trustDevice(ctx context.Context, userID uuid.UUID, deviceID, presented string) (string, error) {
	expire := s.now().Add(trustedDeviceTTL)
	if id, err := uuid.Parse(deviceID); err == nil {
		return presented, s.store.touchTrustedDevice(ctx, id, expire)
	}
	token := newSecret("bpd_")
	err := s.store.inTx(ctx, func(tx *store) error {
		if _, err := tx.createTrustedDevice(ctx, dbsqlc.TrustedDeviceInsertParams{
			ID: uuid.Must(uuid.NewV7()), UserID: userID, TokenHash: digest(token), ExpireTime: expire,
		}); err != nil {
			return err
		}
		return tx.pruneTrustedDevices(ctx, userID, maxTrustedDevices)
	})
	return token, err
}
