package auth

import (
	"context"
	"errors"
	"net/url"

	"github.com/google/uuid"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// SignUp creates an account, signs it in and sends the verification email. The account,
// its verification token and its first session are written in one transaction: a
// sign-up cut short by an outage (PostgreSQL gone between two writes, found by the
// faults suite) either happened whole or not at all, so a client told 503 retries and
// never meets an account that has no verification link and answers 409.
func (s *Server) SignUp(ctx context.Context, req *authv1.SignUpRequest) (*authv1.SignUpResponse, error) {
	email := normalizeEmail(req.GetEmail())
	name := cleanDisplayName(req.GetDisplayName())
	if name == "" {
		return nil, errBadDisplayName
	}
	if err := s.checkPassword(req.GetPassword(), email); err != nil {
		return nil, err
	}
	hash, err := s.hash(ctx, req.GetPassword())
	if err != nil {
		return nil, err
	}
	client := clientOf(ctx)
	now := s.now()
	expire := now.Add(s.cfg.RefreshTokenTTL)
	refresh, verify := newSecret(""), newSecret("")
	var (
		u    dbsqlc.User
		tok  dbsqlc.EmailToken
		sess dbsqlc.Session
	)
	err = s.store.inTx(ctx, func(tx *store) error {
		var err error
		if u, err = tx.createUser(ctx, dbsqlc.UserInsertParams{
			ID: uuid.Must(uuid.NewV7()), Email: email, DisplayName: name, PasswordHash: hash,
		}); err != nil {
			return err
		}
		if tok, err = tx.createEmailToken(ctx, dbsqlc.EmailTokenInsertParams{
			ID: uuid.Must(uuid.NewV7()), UserID: u.ID, Kind: kindVerifyEmail,
			TokenHash: digest(verify), ExpireTime: now.Add(verifyEmailTTL),
		}); err != nil {
			return err
		}
		if sess, err = tx.createSession(ctx, dbsqlc.SessionInsertParams{
			ID: uuid.Must(uuid.NewV7()), UserID: u.ID,
			UserAgent: client.userAgent, IpAddress: client.ip, ExpireTime: expire,
		}); err != nil {
			return err
		}
		_, err = tx.createRefreshToken(ctx, dbsqlc.RefreshTokenInsertParams{
			ID: uuid.Must(uuid.NewV7()), SessionID: sess.ID, TokenHash: digest(refresh), ExpireTime: expire,
		})
		return err
	})
	if errors.Is(err, database.ErrConflict) {
		return nil, fault.New(fault.AlreadyExists, "an account with this email exists")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not create the account")
	}
	s.markLive(ctx, sess.ID, expire)
	s.sendMail(ctx, securityEmail{
		UserID: u.ID.String(), Template: "verify_email",
		Data:           mailData(u, map[string]string{"link": s.publicURL + "/verify-email?token=" + url.QueryEscape(verify)}),
		IdempotencyKey: "verify_email:" + tok.ID.String(),
	})
	pair, err := s.issuePair(u, sess.ID, refresh)
	if err != nil {
		return nil, err
	}
	return &authv1.SignUpResponse{User: s.userToProto(u), Tokens: pair}, nil
}
