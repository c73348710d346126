package auth

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// errBadDisplayName answers a display name with nothing left once cleaned (see
// cleanDisplayName), or too long.
var errBadDisplayName = fault.New(fault.InvalidArgument, "the display name must be 1 to 100 characters").WithDetails(&errdetails.BadRequest{
	FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "display_name", Description: "must be 1 to 100 printable characters"}},
})

// errBadLogin answers an unknown email and a wrong password alike.
var errBadLogin = fault.New(fault.Unauthenticated, "the email or password is wrong")

func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// checkPassword applies the password policy, as a client-safe error.
func (s *Server) checkPassword(pw, email string) error {
	if err := s.policy.Check(pw, email); err != nil {
		return fault.New(fault.InvalidArgument, err.Error()).WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "password", Description: err.Error()}},
		})
	}
	return nil
}

// hash hashes a password; a context that ends while waiting for a hashing slot yields
// its error, anything else is ours.
func (s *Server) hash(ctx context.Context, pw string) (string, error) {
	h, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fault.Wrap(fault.Internal, err, "could not hash the password")
	}
	return h, nil
}

// SignUp creates an account. In the default mode, SignupVerify, it answers every
// sign-up alike and signs no one in: the email sent says either "verify your address"
// (its link signs in) or "someone tried to register with your address". In
// SignupInstant it signs the new account in at once and answers a taken address with
// ALREADY_EXISTS. The password is hashed before anything else in both modes and on both
// paths, so that the hash, which dominates the time taken, does not tell them apart.
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
	params := dbsqlc.UserInsertParams{ID: uuid.Must(uuid.NewV7()), Email: email, DisplayName: name, PasswordHash: hash}
	if s.cfg.SignupMode == SignupInstant {
		return s.signUpInstant(ctx, params)
	}
	return s.signUpVerify(ctx, params)
}

// signUpInstant creates the account, its verification email and its first session in
// one transaction: a sign-up cut short by an outage (PostgreSQL gone between two writes,
// as the faults suite found) happened whole or not at all, so a client told 503 retries
// and never meets an account without its verification link that answers 409.
func (s *Server) signUpInstant(ctx context.Context, params dbsqlc.UserInsertParams) (*authv1.SignUpResponse, error) {
	client := clientOf(ctx)
	expire := s.now().Add(s.cfg.RefreshTokenTTL)
	refresh := newSecret("")
	var (
		u    dbsqlc.User
		sess dbsqlc.Session
	)
	err := s.store.inTx(ctx, func(tx *store) error {
		var err error
		if u, err = tx.createUser(ctx, params); err != nil {
			return err
		}
		if err = s.queueVerification(ctx, tx, u); err != nil {
			return err
		}
		// The client that signed up is known to the account from now on: its first
		// log-in is no "new sign-in".
		if _, err = tx.seeFingerprint(ctx, u.ID, client, s.now()); err != nil {
			return err
		}
		sess, err = openSession(ctx, tx, u.ID, client, expire, refresh)
		return err
	})
	if errors.Is(err, database.ErrConflict) {
		return nil, fault.New(fault.AlreadyExists, "an account with this email exists")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not create the account")
	}
	s.markLive(ctx, sess.ID, expire)
	pair, err := s.issuePair(u, sess.ID, refresh)
	if err != nil {
		return nil, err
	}
	return &authv1.SignUpResponse{
		User: s.userToProto(u), AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken,
		TokenType: tokenType, ExpiresIn: pair.ExpiresIn,
	}, nil
}

// errSignUpRace is a concurrent sign-up that took the address first.
var errSignUpRace = errors.New("the address was taken meanwhile")

// signUpVerify creates the account with its verification email, or, when the address
// has an account, sends that account's owner a note that someone tried to register; and
// answers both alike. The note is sent at most mailsPerHour times an hour per address,
// so sign-up cannot be used to flood someone's inbox.
func (s *Server) signUpVerify(ctx context.Context, params dbsqlc.UserInsertParams) (*authv1.SignUpResponse, error) {
	// Asked on both paths, so that the work done is the same.
	allowed, err := s.lockout.throttle(ctx, "signup_attempt:"+params.Email, mailsPerHour, mailWindow)
	if err != nil {
		// Redis is down: no note, rather than an answer that differs.
		s.log.ErrorContext(ctx, "throttle sign-up notes", "error", err)
		allowed = false
	}
	err = s.store.inTx(ctx, func(tx *store) error {
		existing, err := tx.userByEmail(ctx, params.Email)
		switch {
		case err == nil:
			if !allowed || existing.DisableTime != nil {
				return nil
			}
			return tx.queueMail(ctx, securityEmail{
				UserID: existing.ID.String(), Template: "signup_attempt",
				Data:           mailData(existing, map[string]string{}),
				IdempotencyKey: "signup_attempt:" + uuid.Must(uuid.NewV7()).String(),
			})
		case !errors.Is(err, database.ErrNotFound):
			return err
		}
		u, err := tx.createUser(ctx, params)
		if errors.Is(err, database.ErrConflict) {
			return errSignUpRace
		}
		if err != nil {
			return err
		}
		return s.queueVerification(ctx, tx, u)
	})
	if err != nil && !errors.Is(err, errSignUpRace) {
		return nil, fault.Wrap(fault.Internal, err, "could not create the account")
	}
	return &authv1.SignUpResponse{EmailVerificationRequired: true}, nil
}

// Login exchanges an email and password for a new session. Unknown emails cost a
// dummy hash comparison, so they answer with the same status, body and timing as wrong
// passwords, and count towards the same lockout. Each attempt is reserved against the
// lockout before any hashing (see lockout), and a device that signed in before is
// throttled on its own.
func (s *Server) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	email := normalizeEmail(req.GetEmail())
	a := attempt{email: email, ip: clientOf(ctx).ip}
	u, err := s.store.userByEmail(ctx, email)
	known := err == nil
	switch {
	case known:
		a.credential = u.PasswordHash
		if a.device, err = s.trustedDevice(ctx, u.ID, req.GetDeviceToken()); err != nil {
			return nil, fault.Wrap(fault.Internal, err, "could not sign in")
		}
	case !errors.Is(err, database.ErrNotFound):
		return nil, fault.Wrap(fault.Internal, err, "could not sign in")
	}
	res, wait, err := s.lockout.reserve(ctx, a)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "sign-in is unavailable; retry later")
	}
	if wait > 0 {
		return nil, tooManyAttempts(ctx, wait)
	}

	var ok bool
	if known {
		ok, err = s.hasher.Verify(ctx, req.GetPassword(), u.PasswordHash)
	} else {
		err = s.hasher.VerifyDummy(ctx, req.GetPassword())
	}
	if err != nil {
		if rerr := res.abandon(ctx); rerr != nil {
			s.log.ErrorContext(ctx, "give back a sign-in attempt", "error", rerr)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fault.Wrap(fault.Internal, err, "could not sign in")
	}
	if !ok {
		return nil, errBadLogin
	}
	if u.DisableTime != nil {
		// Said only to someone who knows the password.
		return nil, fault.New(fault.PermissionDenied, "this account is disabled")
	}
	if err := res.succeeded(ctx); err != nil {
		s.log.ErrorContext(ctx, "reset failed logins", "error", err)
	}
	if s.hasher.NeedsRehash(u.PasswordHash) {
		// Parameters were raised since this hash was made: upgrade it now that we have
		// the password. Failure only postpones the upgrade.
		if h, err := s.hasher.Hash(ctx, req.GetPassword()); err == nil {
			if _, err := s.store.setPassword(ctx, u.ID, h); err != nil {
				s.log.ErrorContext(ctx, "upgrade password hash", "error", err)
			}
		}
	}
	device, err := s.trustDevice(ctx, u.ID, a.device, req.GetDeviceToken())
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not sign in")
	}
	// A device that presented its token is known: no email, whatever its network.
	pair, err := s.signIn(ctx, u, a.device == "")
	if err != nil {
		return nil, err
	}
	return &authv1.LoginResponse{
		AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken,
		TokenType: tokenType, ExpiresIn: pair.ExpiresIn, User: s.userToProto(u),
		DeviceToken: device,
	}, nil
}

// signIn starts a session for u and records the client's fingerprint. With
// untrustedDevice, a fingerprint the account has not signed in from lately also queues
// the "new sign-in" email, in the session's transaction: an email on every sign-in
// trains people to ignore them.
func (s *Server) signIn(ctx context.Context, u dbsqlc.User, untrustedDevice bool) (tokenPair, error) {
	client := clientOf(ctx)
	return s.startSession(ctx, u, func(tx *store) error {
		first, err := tx.seeFingerprint(ctx, u.ID, client, s.now())
		if err != nil || !first || !untrustedDevice {
			return err
		}
		return tx.queueMail(ctx, securityEmail{
			UserID: u.ID.String(), Template: "new_sign_in",
			Data: mailData(u, map[string]string{
				"ip_address": client.ip, "user_agent": client.userAgent,
				"time": s.now().UTC().Format(time.RFC3339),
			}),
			IdempotencyKey: "new_sign_in:" + uuid.Must(uuid.NewV7()).String(),
		})
	})
}

// tooManyAttempts is RESOURCE_EXHAUSTED with a retry-after header and a RetryInfo
// detail, which the gateway turns into 429 and Retry-After.
func tooManyAttempts(ctx context.Context, wait time.Duration) error {
	secs := int64((wait + time.Second - 1) / time.Second)
	_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", strconv.FormatInt(secs, 10)))
	return fault.New(fault.ResourceExhausted, "too many attempts; retry later").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)})
}

// GetCurrentUser returns the caller's account.
// It is answered from the user cache: a write through this replica is in the next
// answer, one through another replica within userCacheTTL.
func (s *Server) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	u, err := s.readCallerUser(ctx, s.store.cachedUserByID)
	if err != nil {
		return nil, err
	}
	return &authv1.GetCurrentUserResponse{User: s.userToProto(u)}, nil
}

// callerUser reads the caller's account from PostgreSQL.
func (s *Server) callerUser(ctx context.Context) (dbsqlc.User, error) {
	return s.readCallerUser(ctx, s.store.userByID)
}

func (s *Server) readCallerUser(ctx context.Context, read func(context.Context, uuid.UUID) (dbsqlc.User, error)) (dbsqlc.User, error) {
	id, err := identity.UserID(ctx)
	if err != nil {
		return dbsqlc.User{}, err
	}
	u, err := read(ctx, id)
	if errors.Is(err, database.ErrNotFound) {
		return dbsqlc.User{}, fault.New(fault.Unauthenticated, "the account no longer exists")
	}
	if err != nil {
		return dbsqlc.User{}, fault.Wrap(fault.Internal, err, "could not read the account")
	}
	return u, nil
}

// writableUserFields are the User fields a user may change about themselves.
var writableUserFields = map[string]bool{"display_name": true}

// UpdateCurrentUser changes the caller's profile. Only display_name is writable: a mask
// naming anything else is refused, and without a mask every other field is ignored.
func (s *Server) UpdateCurrentUser(ctx context.Context, req *authv1.UpdateCurrentUserRequest) (*authv1.UpdateCurrentUserResponse, error) {
	id, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	for _, p := range paths {
		if !writableUserFields[p] {
			return nil, fault.New(fault.InvalidArgument, "only display_name can be changed").WithDetails(&errdetails.BadRequest{
				FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "update_mask", Description: p + " is not writable"}},
			})
		}
	}
	name := cleanDisplayName(req.GetUser().GetDisplayName())
	if len(paths) > 0 || name != "" {
		if name == "" || utf8.RuneCountInString(name) > 100 {
			return nil, errBadDisplayName
		}
		if _, err := s.store.setDisplayName(ctx, id, name); err != nil && !errors.Is(err, database.ErrNotFound) {
			return nil, fault.Wrap(fault.Internal, err, "could not update the account")
		}
	}
	u, err := s.callerUser(ctx)
	if err != nil {
		return nil, err
	}
	return &authv1.UpdateCurrentUserResponse{User: s.userToProto(u)}, nil
}
