package backplane_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/sdk/go/backplane"
)

var verifyLink = regexp.MustCompile(`/verify-email\?token=([A-Za-z0-9_-]+)`)

// verifyAddress verifies an account's address as its owner does, with the link from the
// verification email in the dev server's mailbox (API keys need a verified address).
func verifyAddress(ctx context.Context, c *backplane.Client, dataDir, email string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		if token := findVerificationToken(dataDir, email); token != "" {
			_, err := c.Auth.VerifyEmail(ctx, &authv1.VerifyEmailRequest{Token: token})
			return err
		}
		select {
		case <-ctx.Done():
			return errors.New("no verification email for " + email + " reached the mailbox")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func findVerificationToken(dataDir, to string) string {
	files, _ := filepath.Glob(filepath.Join(dataDir, "mailbox", "*.eml"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil || !strings.Contains(msg.Header.Get("To"), to) {
			continue
		}
		_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if err != nil {
			continue
		}
		parts := multipart.NewReader(msg.Body, params["boundary"])
		for {
			part, err := parts.NextRawPart()
			if err != nil {
				break
			}
			body, _ := io.ReadAll(quotedprintable.NewReader(part))
			if m := verifyLink.FindSubmatch(body); m != nil {
				return string(m[1])
			}
		}
	}
	return ""
}

// By default sign-up signs no one in and answers alike for any address; the link in the
// verification email does, and the client keeps its tokens.
func TestSignUpThenTheEmailedLinkSignsIn(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t, target)
	email := newEmail()
	user, err := c.SignUp(ctx, &authv1.SignUpRequest{Email: email, Password: password, DisplayName: "Link"})
	require.NoError(t, err)
	require.Nil(t, user, "sign-up names no account: it would tell whether the address had one")
	_, err = c.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "not signed in yet")

	var token string
	require.Eventually(t, func() bool {
		token = findVerificationToken(shared.dataDir, email)
		return token != ""
	}, 15*time.Second, 100*time.Millisecond, "no verification email reached the mailbox")
	user, err = c.VerifyEmail(ctx, token)
	require.NoError(t, err)
	require.True(t, user.GetEmailVerified())
	me, err := c.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err, "the link signed the client in")
	require.Equal(t, email, me.GetUser().GetEmail())

	again, err := c.SignUp(ctx, &authv1.SignUpRequest{Email: email, Password: password, DisplayName: "Link"})
	require.NoError(t, err, "a taken address answers as a new one does")
	require.Nil(t, again)
}
