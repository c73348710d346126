package auth

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/google/uuid"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// Kinds of emailed token, as stored in email_tokens.kind.
const (
	kindVerifyEmail   = "verify_email"
	kindResetPassword = "reset_password"
)

// How many emails of one kind an account may be sent per hour.
const (
	mailsPerHour = 3
	mailWindow   = time.Hour
)

var errBadEmailToken = fault.New(fault.InvalidArgument, "the link is invalid or has expired")

// emailToken stores a new single-use token for a user and returns the link that
// carries it.
func (s *Server) emailToken(ctx context.Context, userID uuid.UUID, kind, path string, ttl time.Duration) (string, uuid.UUID, error) {
	token := newSecret("")
	row, err := s.store.createEmailToken(ctx, dbsqlc.EmailTokenInsertParams{
		ID: uuid.Must(uuid.NewV7()), UserID: userID, Kind: kind,
		TokenHash: digest(token), ExpireTime: s.now().Add(ttl),
	})
	if err != nil {
		return "", uuid.Nil, fault.Wrap(fault.Internal, err, "could not prepare the email")
	}
	return s.publicURL + path + "?token=" + url.QueryEscape(token), row.ID, nil
}

// sendVerification emails a link that verifies the account's address.
func (s *Server) sendVerification(ctx context.Context, u dbsqlc.User) error {
	link, id, err := s.emailToken(ctx, u.ID, kindVerifyEmail, "/verify-email", verifyEmailTTL)
	if err != nil {
		return err
	}
	s.sendMail(ctx, securityEmail{
		UserID: u.ID.String(), Template: "verify_email",
		Data:           mailData(u, map[string]string{"link": link}),
		IdempotencyKey: "verify_email:" + id.String(),
	})
	return nil
}

// VerifyEmail spends a verification token and marks the address verified.
func (s *Server) VerifyEmail(ctx context.Context, req *authv1.VerifyEmailRequest) (*authv1.VerifyEmailResponse, error) {
	var u dbsqlc.User
	err := s.store.inTx(ctx, func(tx *store) error {
		tok, err := tx.consumeEmailToken(ctx, digest(req.GetToken()), kindVerifyEmail)
		if err != nil {
			return err
		}
		u, err = tx.markEmailVerified(ctx, tok.UserID)
		return err
	})
	if errors.Is(err, database.ErrNotFound) {
		return nil, errBadEmailToken
	}
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not verify the address")
	}
	return &authv1.VerifyEmailResponse{User: s.userToProto(u)}, nil
}

// ResendVerificationEmail sends the caller a fresh link; earlier links stop working.
func (s *Server) ResendVerificationEmail(ctx context.Context, _ *authv1.ResendVerificationEmailRequest) (*authv1.ResendVerificationEmailResponse, error) {
	u, err := s.callerUser(ctx)
	if err != nil {
		return nil, err
	}
	if u.EmailVerified {
		return nil, fault.New(fault.FailedPrecondition, "the address is already verified")
	}
	allowed, err := s.lockout.throttle(ctx, kindVerifyEmail+":"+u.ID.String(), mailsPerHour, mailWindow)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "could not send the email; retry later")
	}
	if !allowed {
		return nil, tooManyAttempts(ctx, mailWindow)
	}
	if err := s.store.revokeEmailTokens(ctx, u.ID, kindVerifyEmail); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not send the email")
	}
	if err := s.sendVerification(ctx, u); err != nil {
		return nil, err
	}
	return &authv1.ResendVerificationEmailResponse{}, nil
}

// ForgotPassword emails a reset link. It answers the same, and as fast, whether or not
// the account exists: the work happens after the response.
func (s *Server) ForgotPassword(ctx context.Context, req *authv1.ForgotPasswordRequest) (*authv1.ForgotPasswordResponse, error) {
	email := normalizeEmail(req.GetEmail())
	ctx = context.WithoutCancel(ctx)
	s.background.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := s.sendReset(ctx, email); err != nil {
			s.log.ErrorContext(ctx, "send password reset", "error", err)
		}
	})
	return &authv1.ForgotPasswordResponse{}, nil
}

func (s *Server) sendReset(ctx context.Context, email string) error {
	allowed, err := s.lockout.throttle(ctx, kindResetPassword+":"+email, mailsPerHour, mailWindow)
	if err != nil || !allowed {
		return err
	}
	u, err := s.store.userByEmail(ctx, email)
	if errors.Is(err, database.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if u.DisableTime != nil {
		return nil
	}
	link, id, err := s.emailToken(ctx, u.ID, kindResetPassword, "/reset-password", resetPasswordTTL)
	if err != nil {
		return err
	}
	return sendRetrying(ctx, s.notifier, securityEmail{
		UserID: u.ID.String(), Template: "reset_password",
		Data:           mailData(u, map[string]string{"link": link}),
		IdempotencyKey: "reset_password:" + id.String(),
	})
}

// ResetPassword spends a reset token, sets the new password, ends every session of the
// account and deletes every API key: whoever had the old password, or registered the
// address before its owner, is out. The new password also starts the account's
// sign-in throttle afresh (lockout keys carry a fingerprint of the password hash).
func (s *Server) ResetPassword(ctx context.Context, req *authv1.ResetPasswordRequest) (*authv1.ResetPasswordResponse, error) {
	if err := s.checkPassword(req.GetNewPassword(), ""); err != nil {
		return nil, err
	}
	hash, err := s.hash(ctx, req.GetNewPassword())
	if err != nil {
		return nil, err
	}
	var (
		u     dbsqlc.User
		ended []uuid.UUID
	)
	err = s.store.inTx(ctx, func(tx *store) error {
		tok, err := tx.consumeEmailToken(ctx, digest(req.GetToken()), kindResetPassword)
		if err != nil {
			return err
		}
		if u, err = tx.userByID(ctx, tok.UserID); err != nil {
			return err
		}
		if err := s.checkPassword(req.GetNewPassword(), u.Email); err != nil {
			return err
		}
		if u, err = tx.setPassword(ctx, u.ID, hash); err != nil {
			return err
		}
		// Every other reset link dies with this one.
		if err := tx.revokeEmailTokens(ctx, u.ID, kindResetPassword); err != nil {
			return err
		}
		if ended, err = tx.endUserSessions(ctx, u.ID, uuid.Nil, endPasswordReset); err != nil {
			return err
		}
		_, err = tx.deleteAPIKeys(ctx, u.ID, uuid.Nil)
		return err
	})
	if errors.Is(err, database.ErrNotFound) {
		return nil, errBadEmailToken
	}
	if err != nil {
		if fault.KindOf(err) == fault.InvalidArgument {
			return nil, err
		}
		return nil, fault.Wrap(fault.Internal, err, "could not reset the password")
	}
	if err := s.endSessions(ctx, ended...); err != nil {
		return nil, err
	}
	s.sendPasswordChanged(ctx, u)
	return &authv1.ResetPasswordResponse{}, nil
}

// ChangePassword checks the current password and sets the new one. Unless the caller
// asks to keep them, its other sessions end and the API keys they created (or whose
// creator is unknown) are deleted; keys the calling session created stay. Wrong current
// passwords count towards the sign-in lockout, reserved before hashing as Login's are.
func (s *Server) ChangePassword(ctx context.Context, req *authv1.ChangePasswordRequest) (*authv1.ChangePasswordResponse, error) {
	_, sessID, err := identity.Session(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.callerUser(ctx)
	if err != nil {
		return nil, err
	}
	res, wait, err := s.lockout.reserve(ctx, attempt{email: u.Email, credential: u.PasswordHash, ip: clientOf(ctx).ip})
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "unavailable; retry later")
	}
	if wait > 0 {
		return nil, tooManyAttempts(ctx, wait)
	}
	ok, err := s.hasher.Verify(ctx, req.GetCurrentPassword(), u.PasswordHash)
	if err != nil {
		if rerr := res.abandon(ctx); rerr != nil {
			s.log.ErrorContext(ctx, "give back a password check", "error", rerr)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fault.Wrap(fault.Internal, err, "could not check the password")
	}
	if !ok {
		return nil, fault.New(fault.InvalidArgument, "the current password is wrong")
	}
	if err := res.succeeded(ctx); err != nil {
		s.log.ErrorContext(ctx, "reset failed password checks", "error", err)
	}
	if err := s.checkPassword(req.GetNewPassword(), u.Email); err != nil {
		return nil, err
	}
	hash, err := s.hash(ctx, req.GetNewPassword())
	if err != nil {
		return nil, err
	}
	var ended, deleted []uuid.UUID
	err = s.store.inTx(ctx, func(tx *store) error {
		if _, err := tx.setPassword(ctx, u.ID, hash); err != nil {
			return err
		}
		if err := tx.revokeEmailTokens(ctx, u.ID, kindResetPassword); err != nil {
			return err
		}
		if req.GetKeepOtherSessions() {
			return nil
		}
		if ended, err = tx.endUserSessions(ctx, u.ID, sessID, endPasswordChange); err != nil {
			return err
		}
		deleted, err = tx.deleteAPIKeys(ctx, u.ID, sessID)
		return err
	})
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not change the password")
	}
	if err := s.endSessions(ctx, ended...); err != nil {
		return nil, err
	}
	s.sendPasswordChanged(ctx, u)
	return &authv1.ChangePasswordResponse{
		EndedSessions: int32(len(ended)), DeletedApiKeys: int32(len(deleted)), //nolint:gosec // G115: bounded by sessions and maxKeysPerUser
	}, nil
}

func (s *Server) sendPasswordChanged(ctx context.Context, u dbsqlc.User) {
	s.sendMail(ctx, securityEmail{
		UserID: u.ID.String(), Template: "password_changed",
		Data:           mailData(u, map[string]string{"time": s.now().UTC().Format(time.RFC3339)}),
		IdempotencyKey: "password_changed:" + uuid.Must(uuid.NewV7()).String(),
	})
}
