package auth

import (
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// roles are the roles an account holds: every account is a user; a verified address
// listed in BACKPLANE_ADMIN_EMAILS makes it an admin too.
func (s *Server) roles(u dbsqlc.User) []authv1.Role {
	roles := []authv1.Role{authv1.Role_ROLE_USER}
	if u.EmailVerified && slices.Contains(s.cfg.AdminEmails, u.Email) {
		roles = append(roles, authv1.Role_ROLE_ADMIN)
	}
	return roles
}

func (s *Server) userToProto(u dbsqlc.User) *authv1.User {
	return &authv1.User{
		Id:            u.ID.String(),
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		DisplayName:   cleanDisplayName(u.DisplayName),
		Roles:         s.roles(u),
		CreateTime:    timestamppb.New(u.CreateTime),
		UpdateTime:    timestamppb.New(u.UpdateTime),
		Disabled:      u.DisableTime != nil,
	}
}

func sessionToProto(sess dbsqlc.Session, currentID string) *authv1.Session {
	return &authv1.Session{
		Id:          sess.ID.String(),
		UserAgent:   sess.UserAgent,
		IpAddress:   sess.IpAddress,
		CreateTime:  timestamppb.New(sess.CreateTime),
		LastUseTime: timestamppb.New(sess.LastUseTime),
		ExpireTime:  timestamppb.New(sess.ExpireTime),
		Current:     sess.ID.String() == currentID,
	}
}

func apiKeyToProto(k dbsqlc.ApiKey) *authv1.ApiKey {
	return &authv1.ApiKey{
		Id:          k.ID.String(),
		DisplayName: k.DisplayName,
		Prefix:      k.Prefix,
		Scopes:      k.Scopes,
		CreateTime:  timestamppb.New(k.CreateTime),
		ExpireTime:  optionalTime(k.ExpireTime),
		LastUseTime: optionalTime(k.LastUseTime),
	}
}

func optionalTime(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// tokenPair is a session's new access and refresh token. Sign-up, login, refresh and
// verification all answer with it in the same four top-level fields, as an OAuth 2.0
// token response does.
type tokenPair struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int64
}

// tokenType is the token_type of every token response.
const tokenType = "Bearer"
