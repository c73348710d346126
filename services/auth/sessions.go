package auth

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// Why sessions end, as recorded in sessions.end_reason.
const (
	endLogout         = "logout"
	endRevoked        = "revoked"
	endRefreshReuse   = "refresh_token_reuse"
	endPasswordReset  = "password_reset"
	endPasswordChange = "password_change"
	endUserDisabled   = "user_disabled"
)

// errBadRefreshToken answers every refresh that fails, whatever the reason.
var errBadRefreshToken = fault.New(fault.Unauthenticated, "the refresh token is invalid or expired")

// startSession opens a session for a user and returns its first token pair.
//
// within, when not nil, runs in the session's transaction: what the sign-in causes
// (its fingerprint, the email about it) is committed with it or not at all.
func (s *Server) startSession(ctx context.Context, u dbsqlc.User, within func(tx *store) error) (tokenPair, error) {
	client := clientOf(ctx)
	expire := s.now().Add(s.cfg.RefreshTokenTTL)
	refresh := newSecret("")
	var sess dbsqlc.Session
	err := s.store.inTx(ctx, func(tx *store) error {
		var err error
		if sess, err = openSession(ctx, tx, u.ID, client, expire, refresh); err != nil || within == nil {
			return err
		}
		return within(tx)
	})
	if err != nil {
		return tokenPair{}, fault.Wrap(fault.Internal, err, "could not start a session")
	}
	s.markLive(ctx, sess.ID, expire)
	return s.issuePair(u, sess.ID, refresh)
}

// openSession writes a session and its first refresh token in tx.
func openSession(ctx context.Context, tx *store, userID uuid.UUID, client clientInfo, expire time.Time, refresh string) (dbsqlc.Session, error) {
	sess, err := tx.createSession(ctx, dbsqlc.SessionInsertParams{
		ID: uuid.Must(uuid.NewV7()), UserID: userID,
		UserAgent: client.userAgent, IpAddress: client.ip, ExpireTime: expire,
	})
	if err != nil {
		return dbsqlc.Session{}, err
	}
	_, err = tx.createRefreshToken(ctx, dbsqlc.RefreshTokenInsertParams{
		ID: uuid.Must(uuid.NewV7()), SessionID: sess.ID, TokenHash: digest(refresh), ExpireTime: expire,
	})
	return sess, err
}

func (s *Server) issuePair(u dbsqlc.User, sessionID uuid.UUID, refresh string) (tokenPair, error) {
	access, _, err := s.issuer.Issue(u.ID.String(), sessionID.String(), authn.RoleNames(s.roles(u)))
	if err != nil {
		return tokenPair{}, fault.Wrap(fault.Internal, err, "could not issue a token")
	}
	return tokenPair{AccessToken: access, RefreshToken: refresh, ExpiresIn: int64(s.cfg.AccessTokenTTL / time.Second)}, nil
}

// markLive mirrors a live session to Redis. A failure is logged, not returned: within the
// auth service a Redis miss falls back to PostgreSQL, and the client's next refresh
// writes the mirror again.
func (s *Server) markLive(ctx context.Context, id uuid.UUID, expire time.Time) {
	if err := s.sessions.MarkLive(ctx, id.String(), expire); err != nil {
		s.log.ErrorContext(ctx, "mirror live session", "session_id", id, "error", err)
	}
}

// endSessions writes tombstones for ended sessions, so the edge rejects their access
// tokens at once. The tombstones outlive the last access token issued for them.
func (s *Server) endSessions(ctx context.Context, ids ...uuid.UUID) error {
	keep := s.now().Add(s.cfg.AccessTokenTTL + time.Minute)
	var errs []error
	for _, id := range ids {
		errs = append(errs, s.sessions.End(ctx, id.String(), keep))
	}
	if err := errors.Join(errs...); err != nil {
		// PostgreSQL has ended them; the edge may accept their tokens until Redis
		// recovers or they expire. Report it: the caller asked for them to end now.
		return fault.Wrap(fault.Unavailable, err, "the sessions ended but could not be revoked everywhere yet; retry")
	}
	return nil
}

// RefreshToken spends a refresh token for a new pair. A spent token presented again
// after the grace window ends the whole session: it means the token was stolen, or the
// client is broken, and either way the session cannot be trusted.
func (s *Server) RefreshToken(ctx context.Context, req *authv1.RefreshTokenRequest) (*authv1.RefreshTokenResponse, error) {
	now := s.now()
	presented := req.GetRefreshToken()
	expire := now.Add(s.cfg.RefreshTokenTTL)
	var (
		user   dbsqlc.User
		sessID uuid.UUID
		next   string
		reused bool
	)
	err := s.store.inTx(ctx, func(tx *store) error {
		rt, err := tx.refreshTokenForUpdate(ctx, digest(presented))
		if err != nil {
			return err
		}
		sess, err := tx.sessionForUpdate(ctx, rt.SessionID)
		if err != nil {
			return err
		}
		if sess.EndTime != nil || !sess.ExpireTime.After(now) || !rt.ExpireTime.After(now) {
			return errBadRefreshToken
		}
		if user, err = tx.userByID(ctx, sess.UserID); err != nil {
			return err
		}
		if user.DisableTime != nil {
			return errBadRefreshToken
		}
		sessID = sess.ID
		if rt.SpentTime != nil {
			if s.cfg.RefreshReuseGrace <= 0 || now.Sub(*rt.SpentTime) > s.cfg.RefreshReuseGrace || rt.SuccessorSeed == nil {
				reused = true
				_, err := tx.endSession(ctx, sess.ID, endRefreshReuse)
				return err
			}
			// A concurrent retry within the grace window: answer it with the successor
			// the first spend made (derived again, as it is stored only hashed), so the
			// session stays one chain.
			next = successorOf(presented, rt.SuccessorSeed)
			return tx.touchSession(ctx, dbsqlc.SessionTouchParams{ID: sess.ID, ExpireTime: expire})
		}
		seed := newSeed()
		next = successorOf(presented, seed)
		if err := tx.spendRefreshToken(ctx, rt.ID, seed); err != nil {
			return err
		}
		if _, err := tx.createRefreshToken(ctx, dbsqlc.RefreshTokenInsertParams{
			ID: uuid.Must(uuid.NewV7()), SessionID: sess.ID, TokenHash: digest(next), ExpireTime: expire,
		}); err != nil {
			return err
		}
		return tx.touchSession(ctx, dbsqlc.SessionTouchParams{ID: sess.ID, ExpireTime: expire})
	})
	switch {
	case errors.Is(err, database.ErrNotFound):
		return nil, errBadRefreshToken
	case err != nil:
		return nil, err
	case reused:
		s.log.WarnContext(ctx, "spent refresh token presented again; session ended", "session_id", sessID, "user_id", user.ID)
		if err := s.endSessions(ctx, sessID); err != nil {
			s.log.ErrorContext(ctx, "revoke reused session", "session_id", sessID, "error", err)
		}
		return nil, errBadRefreshToken
	}
	s.markLive(ctx, sessID, expire)
	pair, err := s.issuePair(user, sessID, next)
	if err != nil {
		return nil, err
	}
	return &authv1.RefreshTokenResponse{
		AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken,
		TokenType: tokenType, ExpiresIn: pair.ExpiresIn,
	}, nil
}

// Logout ends the caller's session.
func (s *Server) Logout(ctx context.Context, _ *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	_, sessID, err := identity.Session(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.endSession(ctx, sessID, endLogout); err != nil && !errors.Is(err, database.ErrNotFound) {
		return nil, fault.Wrap(fault.Internal, err, "could not end the session")
	}
	if err := s.endSessions(ctx, sessID); err != nil {
		return nil, err
	}
	return &authv1.LogoutResponse{}, nil
}

// ListSessions lists the caller's live sessions.
func (s *Server) ListSessions(ctx context.Context, _ *authv1.ListSessionsRequest) (*authv1.ListSessionsResponse, error) {
	userID, sessID, err := identity.Session(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.store.liveSessions(ctx, userID)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not list sessions")
	}
	resp := &authv1.ListSessionsResponse{Sessions: make([]*authv1.Session, 0, len(rows))}
	for _, r := range rows {
		resp.Sessions = append(resp.Sessions, sessionToProto(r, sessID.String()))
	}
	return resp, nil
}

// DeleteSession ends one of the caller's sessions. Another user's session answers
// NOT_FOUND, as if it did not exist.
func (s *Server) DeleteSession(ctx context.Context, req *authv1.DeleteSessionRequest) (*authv1.DeleteSessionResponse, error) {
	userID, _, err := identity.Session(ctx)
	if err != nil {
		return nil, err
	}
	notFound := fault.New(fault.NotFound, "no such session")
	id, err := uuid.Parse(req.GetSessionId())
	if err != nil {
		return nil, notFound
	}
	sess, err := s.store.session(ctx, id)
	switch {
	case errors.Is(err, database.ErrNotFound):
		return nil, notFound
	case err != nil:
		return nil, fault.Wrap(fault.Internal, err, "could not end the session")
	case sess.UserID != userID:
		return nil, notFound
	}
	if _, err := s.store.endSession(ctx, id, endRevoked); err != nil && !errors.Is(err, database.ErrNotFound) {
		return nil, fault.Wrap(fault.Internal, err, "could not end the session")
	}
	if err := s.endSessions(ctx, id); err != nil {
		return nil, err
	}
	return &authv1.DeleteSessionResponse{}, nil
}

// CheckSession answers, for a service or the edge whose live-session mirror lacks a
// session's key, from PostgreSQL, and writes the key back (with the session's expiry,
// or a short tombstone for an ended one), so that a key lost to eviction or failover
// neither refuses a live session nor admits an ended one.
func (s *Server) CheckSession(ctx context.Context, req *authv1.CheckSessionRequest) (*authv1.CheckSessionResponse, error) {
	if _, err := identity.CallingService(ctx); err != nil {
		return nil, err
	}
	live, expire, err := s.sessions.Restore(ctx, req.GetSessionId())
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "could not check the session; retry")
	}
	resp := &authv1.CheckSessionResponse{Live: live}
	if live {
		resp.ExpireTime = timestamppb.New(expire)
	}
	return resp, nil
}

// sessionRecords answers the live-session mirror's misses from PostgreSQL.
type sessionRecords struct {
	store *store
	now   func() time.Time
}

// SessionLiveUntil implements authn.SessionRecords.
func (r sessionRecords) SessionLiveUntil(ctx context.Context, sessionID string) (bool, time.Time, error) {
	id, err := uuid.Parse(sessionID)
	if err != nil {
		// An id that is not a UUID names no session auth issued: not live, and no failure.
		return false, time.Time{}, nil //nolint:nilerr // the answer for an unknown session, not an error
	}
	sess, err := r.store.session(ctx, id)
	if errors.Is(err, database.ErrNotFound) {
		return false, time.Time{}, nil
	}
	if err != nil {
		return false, time.Time{}, err
	}
	live := sess.EndTime == nil && sess.ExpireTime.After(r.now())
	return live, sess.ExpireTime, nil
}
