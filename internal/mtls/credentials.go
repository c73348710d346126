package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"google.golang.org/grpc/credentials"
)

// ServerCredentials are a service's gRPC transport credentials: the certificate from
// src, and only callers whose certificate chains to a CA in src, with a Backplane
// identity, are let through the handshake. Which RPCs each may call is the
// Authenticator's and the access policy's to decide.
func ServerCredentials(src *Source) credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, _ := src.current()
			return cert, nil
		},
		// The chain is verified in VerifyConnection, against the CAs as they are at this
		// handshake, since tls.Config.ClientCAs cannot be reloaded.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := src.verify(cs, x509.ExtKeyUsageClientAuth)
			return err
		},
	})
}

// ClientCredentials are a caller's gRPC transport credentials for dialing the piece
// named want: the caller's certificate from src, and only a server whose certificate
// chains to a CA in src and names want. The server's DNS name is not checked: the
// identity in its certificate is what says which service it is, wherever it runs.
func ClientCredentials(src *Source, want string) credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := src.current()
			return cert, nil
		},
		// The standard verification checks DNS names against CAs fixed at start; ours,
		// in VerifyConnection, checks the chain against the current CAs and the SPIFFE
		// identity instead, so it is not skipped but replaced.
		InsecureSkipVerify: true, //nolint:gosec // G402: VerifyConnection verifies the chain and identity
		VerifyConnection: func(cs tls.ConnectionState) error {
			got, err := src.verify(cs, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("mtls: dialed %s, but the server's certificate names %s", want, got)
			}
			return nil
		},
	})
}

// verify checks a peer's chain against the CAs src holds now and returns the piece its
// certificate names.
func (s *Source) verify(cs tls.ConnectionState, usage x509.ExtKeyUsage) (string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", errors.New("mtls: the peer presented no certificate")
	}
	_, roots := s.current()
	intermediates := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		intermediates.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("mtls: peer certificate: %w", err)
	}
	name, err := ServiceOf(leaf)
	if err != nil {
		return "", fmt.Errorf("mtls: peer certificate: %w", err)
	}
	return name, nil
}
