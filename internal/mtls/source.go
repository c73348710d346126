package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Files names the PEM files of one piece's credentials: its certificate chain, its
// private key, and the CA certificates it trusts for its peers. cert-manager's Secret
// holds them as tls.crt, tls.key and ca.crt.
type Files struct {
	Cert, Key, CA string
}

// Source serves a piece's certificate and trusted CAs from Files, reloading them when a
// file changes. It is safe for concurrent use by every handshake.
type Source struct {
	files Files

	mu     sync.Mutex
	stamps [3]os.FileInfo
	cert   *tls.Certificate
	pool   *x509.CertPool
	// identity is the piece the loaded certificate names.
	identity string
}

// NewSource loads files, which must hold a certificate naming a Backplane piece, its
// key, and at least one CA certificate.
func NewSource(files Files) (*Source, error) {
	if files.Cert == "" || files.Key == "" || files.CA == "" {
		return nil, errors.New("mtls: the certificate, key and CA files are all required")
	}
	s := &Source{files: files}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Identity is the piece the currently loaded certificate names.
func (s *Source) Identity() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.identity
}

// current returns the certificate and CA pool to use for a handshake, reloading them
// first if any file changed since they were read. A reload that fails (a rotation caught
// half-written, a certificate not yet matching its new key) keeps what was loaded, and is
// tried again on the next handshake.
func (s *Source) current() (*tls.Certificate, *x509.CertPool) {
	s.mu.Lock()
	changed := s.changedLocked()
	s.mu.Unlock()
	if changed {
		_ = s.reload() // keeps the previous credentials on failure, by design
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert, s.pool
}

// changedLocked reports whether any file differs from when it was loaded: a new
// modification time or size, or another file behind the name (a symlink swapped, as the
// kubelet does when it updates a mounted Secret).
func (s *Source) changedLocked() bool {
	for i, name := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		fi, err := os.Stat(name)
		if err != nil {
			return false // mid-rotation; keep serving what we have
		}
		old := s.stamps[i]
		if old == nil || !os.SameFile(old, fi) || !old.ModTime().Equal(fi.ModTime()) || old.Size() != fi.Size() {
			return true
		}
	}
	return false
}

// reload reads every file and swaps them in only if they form valid credentials.
func (s *Source) reload() error {
	var stamps [3]os.FileInfo
	for i, name := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		fi, err := os.Stat(name)
		if err != nil {
			return fmt.Errorf("mtls: %w", err)
		}
		stamps[i] = fi
	}
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("mtls: certificate %s and key %s: %w", s.files.Cert, s.files.Key, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("mtls: certificate %s: %w", s.files.Cert, err)
	}
	cert.Leaf = leaf
	id, err := ServiceOf(leaf)
	if err != nil {
		return fmt.Errorf("mtls: certificate %s: %w", s.files.Cert, err)
	}
	caPEM, err := os.ReadFile(s.files.CA)
	if err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("mtls: CA file %s holds no PEM certificate", s.files.CA)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stamps, s.cert, s.pool, s.identity = stamps, &cert, pool, id
	return nil
}
