package authn

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accessv1 "github.com/backplane/backplane/gen/backplane/access/v1"
	"github.com/backplane/backplane/internal/access"
	"github.com/backplane/backplane/internal/identity"
)

// WWWAuthenticateHeader is the metadata key of the RFC 6750 challenge sent with
// UNAUTHENTICATED and PERMISSION_DENIED answers; the gateway copies it to the HTTP
// WWW-Authenticate header.
const WWWAuthenticateHeader = "www-authenticate"

// Challenges, per RFC 6750 section 3.
const (
	challengeMissing      = `Bearer realm="backplane"`
	challengeInvalid      = `Bearer realm="backplane", error="invalid_token"`
	challengeInsufficient = `Bearer realm="backplane", error="insufficient_scope"`
)

// Interceptor enforces the access policy each RPC declares in its proto. Place it in
// grpcserver.Config.Unary/Stream, so it runs before validation and the handler.
type Interceptor struct {
	tokens   *Verifier
	keys     Introspector
	services ServiceAuthenticator
	ends     *SessionFeed
	vouches  *Vouches
	issue    bool
	exempt   []string
	log      *slog.Logger
}

// InterceptorConfig configures an Interceptor.
type InterceptorConfig struct {
	// Tokens verifies access tokens. Required.
	Tokens *Verifier
	// APIKeys resolves bpk_ secrets; wrap it in a CachedIntrospector. Required.
	APIKeys Introspector
	// Services authenticates callers of INTERNAL RPCs; nil denies every INTERNAL call.
	Services ServiceAuthenticator
	// Vouches, in a service's interceptor, lets a call our edge relays carry the edge's
	// vouch for its caller (VouchHeader), taken instead of verifying the same credential
	// again; a vouch that does not check refuses the call, and a call without one is
	// verified in full. Nil verifies every credential.
	Vouches *Vouches
	// IssueVouches makes this the edge's interceptor: it takes no vouch, and mints one
	// for every caller it authenticates (VouchFromContext), to forward with the call.
	// It needs Vouches.
	IssueVouches bool
	// ExemptPrefixes are full-method prefixes that need no policy and no credential.
	// Nil means the gRPC health service only; reflection is not exempt, so it needs an
	// explicit entry if it is wanted.
	ExemptPrefixes []string
	// Logger records infrastructure failures (never credentials).
	Logger *slog.Logger
	// SessionEnds, when set, ends a stream opened with an access token as soon as its
	// session ends (stream.go); without it only the token's expiry ends it.
	SessionEnds *SessionFeed
}

// NewInterceptor returns the enforcement interceptor.
func NewInterceptor(cfg InterceptorConfig) (*Interceptor, error) {
	if cfg.Tokens == nil || cfg.APIKeys == nil || cfg.Logger == nil {
		return nil, errors.New("authn: the interceptor needs Tokens, APIKeys and Logger")
	}
	if cfg.IssueVouches && cfg.Vouches == nil {
		return nil, errors.New("authn: IssueVouches needs Vouches")
	}
	exempt := cfg.ExemptPrefixes
	if exempt == nil {
		exempt = []string{"/grpc.health.v1.Health/"}
	}
	return &Interceptor{
		tokens: cfg.Tokens, keys: cfg.APIKeys, services: cfg.Services,
		vouches: cfg.Vouches, issue: cfg.IssueVouches, ends: cfg.SessionEnds,
		exempt: exempt, log: cfg.Logger,
	}, nil
}

// Unary returns the unary server interceptor.
func (in *Interceptor) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, challenge, err := in.authorize(ctx, info.FullMethod)
		if err != nil {
			if challenge != "" {
				_ = grpc.SetHeader(ctx, metadata.Pairs(WWWAuthenticateHeader, challenge))
			}
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream returns the stream server interceptor.
func (in *Interceptor) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, challenge, err := in.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			if challenge != "" {
				_ = ss.SetHeader(metadata.Pairs(WWWAuthenticateHeader, challenge))
			}
			return err
		}
		return in.serveStream(ctx, srv, ss, handler)
	}
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context { return s.ctx }

// authorize decides a call. It returns the context handlers see, and on refusal the
// status error and the challenge to send with it.
func (in *Interceptor) authorize(ctx context.Context, fullMethod string) (context.Context, string, error) {
	for _, p := range in.exempt {
		if strings.HasPrefix(fullMethod, p) {
			return ctx, "", nil
		}
	}
	policy := access.Lookup(fullMethod)
	if policy == nil {
		// No policy means nobody decided who may call it: deny.
		return ctx, "", status.Error(codes.PermissionDenied, "this method is not open to callers")
	}
	bearer, hasBearer, malformed := bearerToken(ctx)
	if policy.GetAudience() != accessv1.Audience_AUDIENCE_INTERNAL {
		// A call our own edge forwards carries its service credential too. Noting which
		// service relayed the call lets handlers believe what only the edge may tell
		// them, such as the client's address; from anyone else it is ignored.
		ctx = in.relayedBy(ctx)
	}

	switch policy.GetAudience() {
	case accessv1.Audience_AUDIENCE_PUBLIC:
		// Anyone may call; a valid credential is passed on, a stale one ignored, so that
		// a client with an expired access token can still log in or refresh.
		if hasBearer {
			if c, err := in.authenticate(ctx, bearer); err == nil {
				ctx = in.vouchFor(identity.WithPrincipal(ctx, c.Principal), c, bearer)
			}
		}
		return ctx, "", nil

	case accessv1.Audience_AUDIENCE_INTERNAL:
		if in.services != nil {
			if name, err := in.services.AuthenticateService(ctx); err == nil {
				return identity.WithService(ctx, name), "", nil
			}
		}
		if hasBearer || malformed {
			// However privileged, a user's credential never opens an INTERNAL RPC.
			return ctx, "", status.Error(codes.PermissionDenied, "this method is for Backplane services only")
		}
		return ctx, "", status.Error(codes.Unauthenticated, "a service credential is required")

	case accessv1.Audience_AUDIENCE_USER, accessv1.Audience_AUDIENCE_ADMIN:
		if malformed {
			return ctx, challengeInvalid, status.Error(codes.Unauthenticated, "the Authorization header is malformed")
		}
		if !hasBearer {
			return ctx, challengeMissing, status.Error(codes.Unauthenticated, "authentication is required")
		}
		c, err := in.authenticate(ctx, bearer)
		p := c.Principal
		if errors.Is(err, ErrInvalidToken) {
			return ctx, challengeInvalid, status.Error(codes.Unauthenticated, "the credential is invalid or expired")
		}
		if err != nil {
			if !errors.Is(err, ErrMirrorRebuilding) {
				in.log.ErrorContext(ctx, "authenticate caller", "method", fullMethod, "error", err)
			}
			return ctx, "", status.Error(codes.Unavailable, "authentication is unavailable; retry later")
		}
		if p.APIKeyID != "" && !scopesAllow(p.Scopes, policy.GetScopes()) {
			return ctx, challengeInsufficient, status.Error(codes.PermissionDenied, "the API key lacks a scope this method requires")
		}
		if policy.GetAudience() == accessv1.Audience_AUDIENCE_ADMIN && !p.HasRole(RoleAdmin) {
			return ctx, "", status.Error(codes.PermissionDenied, "this method is for administrators")
		}
		return in.vouchFor(identity.WithPrincipal(ctx, p), c, bearer), "", nil
	}
	return ctx, "", status.Error(codes.PermissionDenied, "this method is not open to callers")
}

// authenticate resolves a bearer credential: from the edge's vouch when the call
// carries one, else by checking the API key or access token itself.
func (in *Interceptor) authenticate(ctx context.Context, bearer string) (Checked, error) {
	if in.vouches != nil && !in.issue {
		if vals := metadata.ValueFromIncomingContext(ctx, VouchHeader); len(vals) > 0 {
			return in.vouched(ctx, vals, bearer)
		}
	}
	if strings.HasPrefix(bearer, APIKeyPrefix) {
		p, err := in.keys.Introspect(ctx, bearer)
		return Checked{Principal: p}, err
	}
	return in.tokens.check(ctx, bearer)
}

// vouched takes the edge's word for the caller. Only a caller that proved itself one of
// our services may vouch (relayedBy has checked its credential), and only for the
// credential this call carries. A session whose liveness the edge learnt too long ago
// is looked up again here.
func (in *Interceptor) vouched(ctx context.Context, vals []string, bearer string) (Checked, error) {
	if _, ok := identity.ServiceFromContext(ctx); !ok || len(vals) != 1 {
		return Checked{}, ErrInvalidToken
	}
	c, err := in.vouches.Check(vals[0], bearer)
	if err != nil {
		return Checked{}, err
	}
	if c.Principal.SessionID == "" {
		return c, nil
	}
	age := in.vouches.now().Sub(c.LiveAt)
	if c.LiveAt.IsZero() || age > VouchFreshFor || age < -leeway {
		if c.LiveAt, err = in.tokens.sessionLive(ctx, c.Principal.SessionID); err != nil {
			return Checked{}, err
		}
	}
	return c, nil
}

// vouchFor records, at the edge, the vouch to forward for the caller just authenticated.
func (in *Interceptor) vouchFor(ctx context.Context, c Checked, bearer string) context.Context {
	// API keys go unvouched: each service asks the key's authority itself, so that a
	// deleted key stops at once at the service that owns keys (auth), not only when the
	// edge's short introspection cache lets go of it.
	if !in.issue || c.Principal.APIKeyID != "" {
		return ctx
	}
	if v, ok := in.vouches.Mint(c, bearer); ok {
		return withVouch(ctx, v)
	}
	return ctx
}

// scopesAllow reports whether an API key holds every scope a method declares, as
// access.proto documents: a method that lists several needs them all. A method that
// declares no scope is for signed-in users only: an API key must not, say, mint more API
// keys or change the password.
func scopesAllow(held, required []string) bool {
	if len(required) == 0 {
		return false
	}
	for _, s := range required {
		if !slices.Contains(held, s) {
			return false
		}
	}
	return true
}

// bearerToken reads "authorization: Bearer <token>". malformed is set when the header is
// present but unusable (another scheme, several values, no token).
func bearerToken(ctx context.Context) (token string, ok, malformed bool) {
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vals) == 0 {
		return "", false, false
	}
	if len(vals) > 1 {
		return "", false, true
	}
	scheme, tok, found := strings.Cut(vals[0], " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false, true
	}
	return tok, true, false
}

// relayedBy records the calling service, if the call carries a valid service credential.
func (in *Interceptor) relayedBy(ctx context.Context) context.Context {
	if in.services == nil {
		return ctx
	}
	if len(metadata.ValueFromIncomingContext(ctx, ServiceTokenHeader)) == 0 {
		return ctx
	}
	if name, err := in.services.AuthenticateService(ctx); err == nil {
		return identity.WithService(ctx, name)
	}
	return ctx
}
