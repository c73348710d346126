package backplane

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
)

// authorizationKey is the metadata key of the bearer credential.
const authorizationKey = "authorization"

// ErrAPIKeyClient is returned by [Client.SignIn], [Client.SignUp] and [Client.VerifyEmail] on a client made
// with [WithAPIKey]: its credential is the key, and a session would not be used.
var ErrAPIKeyClient = errors.New("backplane: this client authenticates with an API key and cannot sign in")

// Client is a connection to Backplane's gRPC front door and the generated client of
// every service behind it. Each call goes out with the client's credential, is retried
// as [RetryPolicy] says, and fails with an [*Error]. A Client is safe for concurrent use
// and meant to be shared; make one per process and Close it at the end.
type Client struct {
	// Auth signs users up and in, and manages accounts, sessions and API keys. Prefer
	// [Client.SignIn], [Client.SignUp], [Client.VerifyEmail] and [Client.SignOut] to its
	// Login, SignUp, VerifyEmail and Logout: they keep the session's tokens.
	Auth authv1.AuthServiceClient
	// Subscription lists plans and manages the caller's Stripe subscription.
	Subscription subscriptionv1.SubscriptionServiceClient
	// Asset stores the caller's files.
	Asset assetv1.AssetServiceClient
	// Usage records usage and reports it against the plan's quotas.
	Usage usagev1.UsageServiceClient
	// Notification is the caller's inbox, its live stream and email preferences.
	Notification notificationv1.NotificationServiceClient

	conn    *grpc.ClientConn
	methods map[string]method
	retry   RetryPolicy
	apiKey  string // "Bearer bpk_…", or "" for a session
	session *session
	devices devices
}

// New returns a client of the Backplane gRPC front door at target, such as
// "api.example.com:443". It connects lazily, on the first call, so it fails only on
// a malformed target or options that contradict each other. The connection uses TLS
// unless [WithPlaintext] says otherwise.
func New(target string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.plaintext && o.tls != nil {
		return nil, errors.New("backplane: WithPlaintext and WithTLSConfig contradict each other")
	}
	creds := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	switch {
	case o.plaintext:
		creds = insecure.NewCredentials()
	case o.tls != nil:
		creds = credentials.NewTLS(o.tls)
	}
	if o.store == nil {
		o.store = &MemoryStore{}
	}
	c := &Client{methods: methodTable(), retry: o.retry.withDefaults()}
	if o.apiKey != "" {
		c.apiKey = "Bearer " + o.apiKey
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithChainUnaryInterceptor(c.unary),
		grpc.WithChainStreamInterceptor(c.stream),
	}, o.dial...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	c.Auth = authv1.NewAuthServiceClient(conn)
	c.Subscription = subscriptionv1.NewSubscriptionServiceClient(conn)
	c.Asset = assetv1.NewAssetServiceClient(conn)
	c.Usage = usagev1.NewUsageServiceClient(conn)
	c.Notification = notificationv1.NewNotificationServiceClient(conn)
	c.session = &session{auth: c.Auth, store: o.store, now: time.Now}
	return c, nil
}

// Conn is the client's connection, for calling services this package does not wrap
// (health, reflection) with the same credential, retries and errors.
func (c *Client) Conn() grpc.ClientConnInterface {
	return c.conn
}

// Close closes the connection. It does not sign out: the session stays in the
// [TokenStore] for the next client.
func (c *Client) Close() error {
	return c.conn.Close()
}

// SignIn signs in with an email address and password and keeps the new session's
// tokens, in place of any session the client held (which stays open on the server:
// SignOut first to end it). A wrong email and a wrong password fail alike, with
// codes.Unauthenticated; too many failures, with codes.ResourceExhausted and a
// RetryInfo. The client sends back the device token its last sign-in to the account
// received, so that others' wrong guesses at the account do not lock it out.
func (c *Client) SignIn(ctx context.Context, email, password string) (*authv1.User, error) {
	if c.apiKey != "" {
		return nil, ErrAPIKeyClient
	}
	resp, err := c.Auth.Login(ctx, &authv1.LoginRequest{Email: email, Password: password, DeviceToken: c.devices.token(email)})
	if err != nil {
		return nil, err
	}
	c.devices.remember(email, resp.GetDeviceToken())
	t, err := tokensFrom(resp, c.session.now())
	if err != nil {
		return nil, err
	}
	return resp.GetUser(), c.session.set(ctx, t)
}

// SignUp creates an account. When the server signs the new account in at once
// (BACKPLANE_SIGNUP_MODE=instant), the client keeps its tokens and is signed in, and
// the new account is returned. By default the server answers every sign-up alike,
// with no account and no tokens (email_verification_required): the client stays as it
// was, and the link in the email that reaches the address signs in ([Client.VerifyEmail]).
func (c *Client) SignUp(ctx context.Context, req *authv1.SignUpRequest) (*authv1.User, error) {
	if c.apiKey != "" {
		return nil, ErrAPIKeyClient
	}
	resp, err := c.Auth.SignUp(ctx, req)
	if err != nil {
		return nil, err
	}
	t, err := tokensFrom(resp, c.session.now())
	if errors.Is(err, errNoTokens) {
		return resp.GetUser(), nil
	}
	if err != nil {
		return nil, err
	}
	return resp.GetUser(), c.session.set(ctx, t)
}

// VerifyEmail spends the token from a verification email's link, which verifies the
// address and signs in: the client keeps the new session's tokens, in place of any it
// held, and returns the account. A disabled account is verified but not signed in:
// the client stays as it was.
func (c *Client) VerifyEmail(ctx context.Context, token string) (*authv1.User, error) {
	if c.apiKey != "" {
		return nil, ErrAPIKeyClient
	}
	resp, err := c.Auth.VerifyEmail(ctx, &authv1.VerifyEmailRequest{Token: token})
	if err != nil {
		return nil, err
	}
	t, err := tokensFrom(resp, c.session.now())
	if errors.Is(err, errNoTokens) {
		return resp.GetUser(), nil
	}
	if err != nil {
		return nil, err
	}
	return resp.GetUser(), c.session.set(ctx, t)
}

// SignOut ends the session on the server and forgets its tokens. The tokens are
// forgotten even when the server cannot be told, whose error is then returned: the
// session then lasts until its refresh token expires.
func (c *Client) SignOut(ctx context.Context) error {
	if c.apiKey != "" {
		return ErrAPIKeyClient
	}
	cur, err := c.session.current(ctx)
	if err != nil {
		return err
	}
	if cur.tokens.IsZero() {
		return nil
	}
	_, err = c.Auth.Logout(ctx, &authv1.LogoutRequest{})
	if e, ok := errors.AsType[*Error](err); ok && e.Code == codes.Unauthenticated {
		err = nil // the session had already ended
	}
	return errors.Join(err, c.session.set(ctx, Tokens{}))
}

// credential returns the authorization value for a call of m, and whether it is the
// session's access token (which a refresh can replace).
func (c *Client) credential(ctx context.Context, m method) (string, bool, error) {
	switch {
	case c.apiKey != "":
		return c.apiKey, false, nil
	case m.public:
		return c.session.freshBearer(ctx), false, nil
	}
	b, err := c.session.bearer(ctx)
	return b, b != "", err
}

// unary is the client's interceptor: credential, refresh-and-retry-once on
// UNAUTHENTICATED, retries, and errors as *Error.
func (c *Client) unary(ctx context.Context, fullMethod string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	m := c.methods[fullMethod]
	for attempt := 1; ; attempt++ {
		var header, trailer metadata.MD
		callOpts := append(opts[:len(opts):len(opts)], grpc.Header(&header), grpc.Trailer(&trailer))
		err := c.attempt(ctx, m, fullMethod, req, reply, cc, invoker, callOpts)
		if err == nil {
			return nil
		}
		err = asError(ctx, err, header, trailer)
		e, ok := errors.AsType[*Error](err)
		if !ok {
			return err
		}
		wait, again := c.retry.retryWait(ctx, e, attempt, m.safeToRepeat(req) || markedIdempotent(opts))
		if !again {
			return e
		}
		if !sleep(ctx, wait) {
			e.cause = ctx.Err()
			return e
		}
	}
}

// attempt makes one attempt of a call; when the session's access token is refused, it
// refreshes the token and tries once more. The server refuses a bad credential before
// running anything, so the second try cannot do anything twice.
func (c *Client) attempt(ctx context.Context, m method, fullMethod string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts []grpc.CallOption) error {
	bearer, renewable, err := c.credential(ctx, m)
	if err != nil {
		return err
	}
	err = invoker(withBearer(ctx, bearer), fullMethod, req, reply, cc, opts...)
	if !renewable || status.Code(err) != codes.Unauthenticated {
		return err
	}
	if bearer, err = c.session.refresh(ctx, bearer); err != nil {
		return err
	}
	return invoker(withBearer(ctx, bearer), fullMethod, req, reply, cc, opts...)
}

// stream gives a stream the client's credential (refreshed first if need be) and turns
// its errors into *Error. A stream is not retried: its caller reopens it.
func (c *Client) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, fullMethod string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	bearer, _, err := c.credential(ctx, c.methods[fullMethod])
	if err != nil {
		return nil, asError(ctx, err, nil, nil)
	}
	ctx = withBearer(ctx, bearer)
	s, err := streamer(ctx, desc, cc, fullMethod, opts...)
	if err != nil {
		return nil, asError(ctx, err, nil, nil)
	}
	return &errorStream{ClientStream: s, ctx: ctx}, nil
}

func withBearer(ctx context.Context, bearer string) context.Context {
	if bearer == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, authorizationKey, bearer)
}

// errorStream turns a stream's errors into *Error; io.EOF, the normal end, passes.
type errorStream struct {
	grpc.ClientStream
	ctx context.Context
}

func (s *errorStream) convert(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	header, _ := s.ClientStream.Header()
	return asError(s.ctx, err, header, s.Trailer())
}

func (s *errorStream) RecvMsg(m any) error { return s.convert(s.ClientStream.RecvMsg(m)) }

func (s *errorStream) SendMsg(m any) error { return s.convert(s.ClientStream.SendMsg(m)) }

func (s *errorStream) CloseSend() error { return s.convert(s.ClientStream.CloseSend()) }

func (s *errorStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	if err != nil {
		return md, asError(s.ctx, err, nil, s.Trailer())
	}
	return md, nil
}
