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
	"time"

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
