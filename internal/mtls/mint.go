package mtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// CA is a throwaway certificate authority, for `backplane dev` and tests: production
// certificates come from cert-manager or the operator's own PKI.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// NewCA makes a CA valid for a day.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mtls: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Backplane throwaway CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("mtls: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mtls: CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// PEM is the CA's certificate, PEM-encoded: what every piece trusts.
func (ca *CA) PEM() []byte { return ca.pem }

// Issue signs a certificate for both server and client use carrying uris as its URI
// SANs (one, spiffe://backplane/<piece>, for a real piece), and returns it and its key,
// PEM-encoded.
func (ca *CA) Issue(uris ...*url.URL) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         uris,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// WriteFiles issues a certificate for piece and writes it, its key and the CA into dir
// as <piece>.crt, <piece>.key and ca.crt.
func (ca *CA) WriteFiles(dir, piece string) (Files, error) {
	certPEM, keyPEM, err := ca.Issue(ID(piece))
	if err != nil {
		return Files{}, err
	}
	f := Files{
		Cert: filepath.Join(dir, piece+".crt"),
		Key:  filepath.Join(dir, piece+".key"),
		CA:   filepath.Join(dir, "ca.crt"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("mtls: %w", err)
	}
	// Key first and CA last, each replaced whole by a rename, as a rotation should be:
	// a handshake meanwhile sees either set, or a mismatch it refuses to load.
	for _, w := range []struct {
		name string
		data []byte
	}{{f.Key, keyPEM}, {f.Cert, certPEM}, {f.CA, ca.pem}} {
		if err := writeAtomically(w.name, w.data); err != nil {
			return Files{}, err
		}
	}
	return f, nil
}

// writeAtomically replaces name with data by renaming a finished file over it.
func writeAtomically(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone after the rename; cleans up on failure
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("mtls: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	return nil
}

// Mint makes a throwaway CA and a certificate for each piece under dir, replacing what
// an earlier run left there, and returns each piece's Files. Its CA key is never
// written: nothing can be signed by it once the caller is gone.
func Mint(dir string, pieces ...string) (map[string]Files, error) {
	ca, err := NewCA()
	if err != nil {
		return nil, err
	}
	out := map[string]Files{}
	for _, p := range pieces {
		if out[p], err = ca.WriteFiles(dir, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// serial is a random 128-bit certificate serial number.
func serial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return new(big.Int).SetBytes(b)
}
