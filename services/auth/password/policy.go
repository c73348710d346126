package password

import (
	"bufio"
	_ "embed"
	"errors"
	"strings"
	"unicode/utf8"
)

// Length limits, in characters. The upper bound keeps hashing cost predictable.
const (
	MinLength = 8
	MaxLength = 128
)

// Reasons a password is refused. Their messages are safe to show to the user.
var (
	ErrTooShort = errors.New("the password must be at least 8 characters")
	ErrTooLong  = errors.New("the password must be at most 128 characters")
	ErrCommon   = errors.New("the password is too common; choose another")
	ErrIsEmail  = errors.New("the password must not be the email address")
)

//go:embed common.txt
var commonList string

// Policy decides whether a new password is acceptable.
type Policy struct {
	common map[string]struct{}
}

// NewPolicy returns the policy with the embedded list of common passwords.
func NewPolicy() *Policy {
	p := &Policy{common: map[string]struct{}{}}
	sc := bufio.NewScanner(strings.NewReader(commonList))
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" && !strings.HasPrefix(w, "#") {
			p.common[strings.ToLower(w)] = struct{}{}
		}
	}
	return p
}

// Check returns nil when password may be used by the account with email.
func (p *Policy) Check(password, email string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinLength:
		return ErrTooShort
	case n > MaxLength:
		return ErrTooLong
	case email != "" && strings.EqualFold(password, email):
		return ErrIsEmail
	}
	if _, ok := p.common[strings.ToLower(password)]; ok {
		return ErrCommon
	}
	return nil
}

// Len returns how many common passwords the policy knows.
func (p *Policy) Len() int { return len(p.common) }
