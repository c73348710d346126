package auth

import (
	"context"
	"errors"
	"net/url"
	"strconv"
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

// emailToken stores a new single-use token for a user, in tx, and returns the link that
// carries it.
func (s *Server) emailToken(ctx context.Context, tx *store, userID uuid.UUID, kind, path string, ttl time.Duration) (string, uuid.UUID, error) {
	token := newSecret("")
	row, err := tx.createEmailToken(ctx, dbsqlc.EmailTokenInsertParams{
		ID: uuid.Must(uuid.NewV7()), UserID: userID, Kind: kind,
		TokenHash: digest(token), ExpireTime: s.now().Add(ttl),
	})
	if err != nil {
		return "", uuid.Nil, err
	}
	return s.publicURL + path + "?token=" + url.QueryEscape(token), row.ID, nil
}

// queueVerification stores a verification token and queues the email with its link, in
// tx.
func (s *Server) queueVerification(ctx context.Context, tx *store, u dbsqlc.User) error {
	link, id, err := s.emailToken(ctx, tx, u.ID, kindVerifyEmail, "/verify-email", verifyEmailTTL)
	if err != nil {
		return err
	}
	return tx.queueMail(ctx, securityEmail{
		UserID: u.ID.String(), Template: "verify_email",
		Data:           mailData(u, map[string]string{"link": link}),
		IdempotencyKey: "verify_email:" + id.String(),
	})
}

// VerifyEmail spends a verification token, marks the address verified and signs the
// account in: the link is as good as the password, since it reached the address that
// would reset it. A disabled account is verified but not signed in.
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
	resp := &authv1.VerifyEmailResponse{User: s.userToProto(u)}
	if u.DisableTime != nil {
		return resp, nil
	}
	// The owner just proved the address from this client: no "new sign-in" email.
	pair, err := s.signIn(ctx, u, false)
	if err != nil {
		return nil, err
	}
	resp.AccessToken, resp.RefreshToken, resp.TokenType, resp.ExpiresIn = pair.AccessToken, pair.RefreshToken, tokenType, pair.ExpiresIn
	return resp, nil
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
	err = s.store.inTx(ctx, func(tx *store) error {
		if err := tx.revokeEmailTokens(ctx, u.ID, kindVerifyEmail); err != nil {
			return err
		}
		return s.queueVerification(ctx, tx, u)
	})
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not send the email")
	}
	return &authv1.ResendVerificationEmailResponse{}, nil
}

// ForgotPassword emails a reset link. It answers the same, and as fast, whether or not
// the account exists: it queues a job for the address either way, and the job looks the
// account up (jobs.go).
func (s *Server) ForgotPassword(ctx context.Context, req *authv1.ForgotPasswordRequest) (*authv1.ForgotPasswordResponse, error) {
	email := normalizeEmail(req.GetEmail())
	allowed, err := s.lockout.throttle(ctx, kindResetPassword+":"+email, mailsPerHour, mailWindow)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "could not send the email; retry later")
	}
	if !allowed {
		// Answered alike: a refusal would say that someone asked for this address.
		return &authv1.ForgotPasswordResponse{}, nil
	}
	if err := s.store.queueReset(ctx, email); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not send the email")
	}
	return &authv1.ForgotPasswordResponse{}, nil
}

// sendReset mints a reset link for the account of email, if it has one that is
// enabled, and hands the email to the notifier; jobID makes the retries of one job
// send once.
func (s *Server) sendReset(ctx context.Context, email string, jobID int64) error {
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
	var link string
	if err := s.store.inTx(ctx, func(tx *store) error {
		link, _, err = s.emailToken(ctx, tx, u.ID, kindResetPassword, "/reset-password", resetPasswordTTL)
		return err
	}); err != nil {
		return err
	}
	return s.notifier.Send(ctx, securityEmail{
		UserID: u.ID.String(), Template: "reset_password",
		Data:           mailData(u, map[string]string{"link": link}),
		IdempotencyKey: "reset_password:" + strconv.FormatInt(jobID, 10),
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
		if _, err = tx.deleteAPIKeys(ctx, u.ID, uuid.Nil); err != nil {
			return err
		}
		return s.queuePasswordChanged(ctx, tx, u)
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
		if err := s.queuePasswordChanged(ctx, tx, u); err != nil {
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
	return &authv1.ChangePasswordResponse{
		EndedSessions: int32(len(ended)), DeletedApiKeys: int32(len(deleted)), //nolint:gosec // G115: bounded by sessions and maxKeysPerUser
	}, nil
}

// queuePasswordChanged queues the email that tells the owner their password changed,
// in the transaction that changes it.
func (s *Server) queuePasswordChanged(ctx context.Context, tx *store, u dbsqlc.User) error {
	return tx.queueMail(ctx, securityEmail{
		UserID: u.ID.String(), Template: "password_changed",
		Data:           mailData(u, map[string]string{"time": s.now().UTC().Format(time.RFC3339)}),
		IdempotencyKey: "password_changed:" + uuid.Must(uuid.NewV7()).String(),
	})
}
