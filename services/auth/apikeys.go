package auth

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// prefixLen is how much of a secret is kept in clear: "bpk_" and 8 characters, 48 bits
// of the 256, enough to tell keys apart and useless for guessing the rest.
const prefixLen = len(authn.APIKeyPrefix) + 8

// maxKeysPerUser bounds how many keys one account may hold.
const maxKeysPerUser = 100

var errBadAPIKey = fault.New(fault.Unauthenticated, "the API key is invalid, expired or revoked")

// errUnverifiedKeys refuses API keys to an account whose address is not verified: whoever
// registered someone else's address first must not hold a credential that outlives the
// owner's recovery of the account.
var errUnverifiedKeys = fault.New(fault.FailedPrecondition, "verify the account's email address before creating API keys").
	WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{
		Type: "EMAIL_VERIFICATION", Subject: "email", Description: "the email address is not verified",
	}}})

// CreateApiKey creates an API key for the caller and returns its secret, once. The key
// remembers the session that created it, for ChangePassword.
func (s *Server) CreateApiKey(ctx context.Context, req *authv1.CreateApiKeyRequest) (*authv1.CreateApiKeyResponse, error) {
	userID, sessID, err := identity.Session(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.callerUser(ctx)
	if err != nil {
		return nil, err
	}
	if !u.EmailVerified {
		return nil, errUnverifiedKeys
	}
	existing, err := s.store.apiKeys(ctx, userID)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not create the API key")
	}
	if len(existing) >= maxKeysPerUser {
		return nil, fault.New(fault.FailedPrecondition, "too many API keys; delete one first")
	}
	secret := newSecret(authn.APIKeyPrefix)
	p := dbsqlc.APIKeyInsertParams{
		ID: uuid.Must(uuid.NewV7()), UserID: userID, DisplayName: cleanDisplayName(req.GetDisplayName()),
		Prefix: secret[:prefixLen], SecretHash: digest(secret), Scopes: req.GetScopes(), SessionID: &sessID,
	}
	if req.GetExpireTime() != nil {
		t := req.GetExpireTime().AsTime()
		if !t.After(s.now()) {
			return nil, fault.New(fault.InvalidArgument, "expire_time must lie in the future")
		}
		p.ExpireTime = &t
	}
	key, err := s.store.createAPIKey(ctx, p)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not create the API key")
	}
	return &authv1.CreateApiKeyResponse{ApiKey: apiKeyToProto(key), Secret: secret}, nil
}

// ListApiKeys lists the caller's keys, without secrets.
func (s *Server) ListApiKeys(ctx context.Context, _ *authv1.ListApiKeysRequest) (*authv1.ListApiKeysResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := s.store.apiKeys(ctx, userID)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not list API keys")
	}
	resp := &authv1.ListApiKeysResponse{ApiKeys: make([]*authv1.ApiKey, 0, len(keys))}
	for _, k := range keys {
		resp.ApiKeys = append(resp.ApiKeys, apiKeyToProto(k))
	}
	return resp, nil
}

// DeleteApiKey deletes one of the caller's keys. Edges cache introspection for a second,
// so the key stops working everywhere within that.
func (s *Server) DeleteApiKey(ctx context.Context, req *authv1.DeleteApiKeyRequest) (*authv1.DeleteApiKeyResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	id, err := uuid.Parse(req.GetApiKeyId())
	if err != nil {
		return nil, fault.New(fault.NotFound, "no such API key")
	}
	err = s.store.deleteAPIKey(ctx, id, userID)
	if errors.Is(err, database.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "no such API key")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not delete the API key")
	}
	return &authv1.DeleteApiKeyResponse{}, nil
}

// IntrospectApiKey resolves a secret to its key, owner, scopes and roles.
func (s *Server) IntrospectApiKey(ctx context.Context, req *authv1.IntrospectApiKeyRequest) (*authv1.IntrospectApiKeyResponse, error) {
	if _, err := identity.CallingService(ctx); err != nil {
		return nil, err
	}
	key, u, err := s.introspect(ctx, req.GetSecret())
	if err != nil {
		return nil, err
	}
	return &authv1.IntrospectApiKeyResponse{
		ApiKeyId: key.ID.String(), UserId: u.ID.String(), Scopes: key.Scopes,
		Roles: s.roles(u), ExpireTime: optionalTime(key.ExpireTime),
	}, nil
}

// introspect finds a live key of an enabled account by its secret. Lookup is by the
// secret's digest, so no secret is compared in Go.
func (s *Server) introspect(ctx context.Context, secret string) (dbsqlc.ApiKey, dbsqlc.User, error) {
	key, err := s.store.apiKeyBySecretHash(ctx, digest(secret))
	if errors.Is(err, database.ErrNotFound) {
		return dbsqlc.ApiKey{}, dbsqlc.User{}, errBadAPIKey
	}
	if err != nil {
		return dbsqlc.ApiKey{}, dbsqlc.User{}, fault.Wrap(fault.Internal, err, "could not check the API key")
	}
	if key.ExpireTime != nil && !key.ExpireTime.After(s.now()) {
		return dbsqlc.ApiKey{}, dbsqlc.User{}, errBadAPIKey
	}
	u, err := s.store.userByID(ctx, key.UserID)
	if err != nil {
		return dbsqlc.ApiKey{}, dbsqlc.User{}, fault.Wrap(fault.Internal, err, "could not check the API key")
	}
	if u.DisableTime != nil {
		return dbsqlc.ApiKey{}, dbsqlc.User{}, errBadAPIKey
	}
	if err := s.store.touchAPIKey(ctx, key.ID); err != nil {
		s.log.ErrorContext(ctx, "record API key use", "api_key_id", key.ID, "error", err)
	}
	return key, u, nil
}

// localIntrospector resolves keys in-process, for the auth service's own interceptor.
type localIntrospector struct{ s *Server }

// Introspect implements authn.Introspector.
func (l localIntrospector) Introspect(ctx context.Context, secret string) (identity.Principal, error) {
	key, u, err := l.s.introspect(ctx, secret)
	if errors.Is(err, errBadAPIKey) {
		return identity.Principal{}, authn.ErrInvalidToken
	}
	if err != nil {
		return identity.Principal{}, err
	}
	return identity.Principal{
		UserID: u.ID.String(), APIKeyID: key.ID.String(),
		Roles: authn.RoleNames(l.s.roles(u)), Scopes: key.Scopes,
	}, nil
}
