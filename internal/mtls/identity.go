package mtls

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"regexp"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/backplane/backplane/internal/authn"
)

// TrustDomain is the SPIFFE trust domain of every Backplane identity.
const TrustDomain = "backplane"

// pieceName is what a piece may be called: a service name, "gateway", or "dev".
var pieceName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// ID is the identity a piece's certificate carries as its URI SAN:
// spiffe://backplane/<piece>.
func ID(piece string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: "/" + piece}
}

// ServiceOf returns the piece a certificate names: its one URI SAN must be
// spiffe://backplane/<piece>.
func ServiceOf(cert *x509.Certificate) (string, error) {
	if len(cert.URIs) != 1 {
		return "", fmt.Errorf("want exactly one URI SAN (spiffe://%s/<service>), found %d", TrustDomain, len(cert.URIs))
	}
	u := cert.URIs[0]
	name := ""
	if len(u.Path) > 1 {
		name = u.Path[1:]
	}
	if u.Scheme != "spiffe" || u.Host != TrustDomain || u.User != nil || u.RawQuery != "" || u.Fragment != "" || !pieceName.MatchString(name) {
		return "", fmt.Errorf("URI SAN %q is not spiffe://%s/<service>", u.String(), TrustDomain)
	}
	return name, nil
}

// InProcess is the AuthInfo of a call that never left the process: a piece calling a
// service it serves itself, over an in-process channel (`backplane dev`). It stands
// where a verified certificate stands for a network call, naming the caller. No network
// peer can present it: gRPC's transports set a peer's AuthInfo from their handshake
// alone, and ours yields credentials.TLSInfo or nothing; only code in this binary
// constructs an InProcess, which is trusted as much as the key of a certificate it
// could read.
type InProcess struct {
	// Piece is the calling piece, as its certificate would name it.
	Piece string
}

var _ credentials.AuthInfo = InProcess{}

// AuthType names the in-process "transport".
func (InProcess) AuthType() string { return "inprocess" }

// PeerService returns the piece the caller's verified certificate names. The chain was
// verified during the handshake (the server's credentials refuse any other), so the
// leaf is the caller's. A call made in process names its caller with InProcess.
func PeerService(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errors.New("no peer")
	}
	if local, ok := p.AuthInfo.(InProcess); ok {
		if !pieceName.MatchString(local.Piece) {
			return "", fmt.Errorf("in-process caller %q is not a piece name", local.Piece)
		}
		return local.Piece, nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return "", errors.New("the connection is not mutual TLS")
	}
	return ServiceOf(info.State.PeerCertificates[0])
}

// Authenticator opens INTERNAL RPCs to a caller whose certificate and service token name
// the same Backplane service: the same policy the tokens alone open, with the
// certificate as the first factor and the token as the second.
type Authenticator struct {
	tokens authn.ServiceAuthenticator
}

var _ authn.ServiceAuthenticator = (*Authenticator)(nil)

// NewAuthenticator checks certificates and, with tokens, the service token beside them.
func NewAuthenticator(tokens authn.ServiceAuthenticator) *Authenticator {
	return &Authenticator{tokens: tokens}
}

// AuthenticateService returns the calling service's name, or an error wrapping
// authn.ErrInvalidToken when its certificate names no service, its token is invalid, or
// the two disagree.
func (a *Authenticator) AuthenticateService(ctx context.Context) (string, error) {
	byCert, err := PeerService(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: %w", authn.ErrInvalidToken, err)
	}
	byToken, err := a.tokens.AuthenticateService(ctx)
	if err != nil {
		return "", err
	}
	if byCert != byToken {
		return "", fmt.Errorf("%w: the certificate names %s, the service token %s", authn.ErrInvalidToken, byCert, byToken)
	}
	return byCert, nil
}
