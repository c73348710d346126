package auth

import (
	"context"
	"encoding/base64"
	"errors"

	"github.com/google/uuid"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/auth/dbsqlc"
)

const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// ListUsers pages through every account in creation order (ids are UUIDv7). The page
// token is the last id of the previous page.
func (s *Server) ListUsers(ctx context.Context, req *authv1.ListUsersRequest) (*authv1.ListUsersResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size <= 0 {
		size = defaultPageSize
	}
	size = min(size, maxPageSize)
	after := uuid.Nil
	if tok := req.GetPageToken(); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err == nil {
			after, err = uuid.FromBytes(raw)
		}
		if err != nil {
			return nil, fault.New(fault.InvalidArgument, "the page token is malformed")
		}
	}
	// One more than asked tells whether another page follows.
	rows, err := s.store.listUsers(ctx, after, int32(size+1))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not list accounts")
	}
	resp := &authv1.ListUsersResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString(rows[size-1].ID[:])
	}
	for _, u := range rows {
		resp.Users = append(resp.Users, s.userToProto(u))
	}
	return resp, nil
}

// DisableUser disables an account and ends its sessions at once; its API keys stop
// working at the next introspection.
func (s *Server) DisableUser(ctx context.Context, req *authv1.DisableUserRequest) (*authv1.DisableUserResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	adminID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	id, err := uuid.Parse(req.GetUserId())
	if err != nil {
		return nil, fault.New(fault.NotFound, "no such account")
	}
	if id == adminID {
		return nil, fault.New(fault.FailedPrecondition, "administrators cannot disable their own account")
	}
	var (
		u     dbsqlc.User
		ended []uuid.UUID
	)
	err = s.store.inTx(ctx, func(tx *store) error {
		var err error
		if u, err = tx.setDisabled(ctx, id, true); err != nil {
			return err
		}
		ended, err = tx.endUserSessions(ctx, id, uuid.Nil, endUserDisabled)
		return err
	})
	if errors.Is(err, database.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "no such account")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not disable the account")
	}
	if err := s.endSessions(ctx, ended...); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "account disabled", "user_id", id, "by", adminID, "sessions_ended", len(ended))
	return &authv1.DisableUserResponse{User: s.userToProto(u)}, nil
}

// EnableUser enables a disabled account. Its old sessions stay ended.
func (s *Server) EnableUser(ctx context.Context, req *authv1.EnableUserRequest) (*authv1.EnableUserResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	id, err := uuid.Parse(req.GetUserId())
	if err != nil {
		return nil, fault.New(fault.NotFound, "no such account")
	}
	u, err := s.store.setDisabled(ctx, id, false)
	if errors.Is(err, database.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "no such account")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not enable the account")
	}
	return &authv1.EnableUserResponse{User: s.userToProto(u)}, nil
}

// LookupUser finds an account by id or email, for other services.
func (s *Server) LookupUser(ctx context.Context, req *authv1.LookupUserRequest) (*authv1.LookupUserResponse, error) {
	if _, err := identity.CallingService(ctx); err != nil {
		return nil, err
	}
	var (
		u   dbsqlc.User
		err error
	)
	switch key := req.GetKey().(type) {
	case *authv1.LookupUserRequest_UserId:
		id, perr := uuid.Parse(key.UserId)
		if perr != nil {
			return nil, fault.New(fault.NotFound, "no such account")
		}
		u, err = s.store.userByID(ctx, id)
	case *authv1.LookupUserRequest_Email:
		u, err = s.store.userByEmail(ctx, normalizeEmail(key.Email))
	default:
		return nil, fault.New(fault.InvalidArgument, "give a user_id or an email")
	}
	if errors.Is(err, database.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "no such account")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not look up the account")
	}
	return &authv1.LookupUserResponse{User: s.userToProto(u)}, nil
}
