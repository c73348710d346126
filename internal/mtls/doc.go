// Package mtls authenticates Backplane's services to one another with mutual TLS.
//
// Every piece of a deployment holds a certificate whose one URI SAN names it in the
// SPIFFE form spiffe://backplane/<piece> (auth, usage, gateway…), signed by a CA that
// every piece trusts. A service's server accepts only callers that present such a
// certificate, and a caller accepts only the server it meant to dial. The identity a
// certificate proves is then checked, for INTERNAL RPCs, against the service token the
// call carries (Authenticator): the two must name the same service, so a stolen token
// is useless without the key and a stolen key without the token.
//
// Certificates and the CA are read from files (BACKPLANE_MTLS_CERT_FILE, _KEY_FILE,
// _CA_FILE) by a Source, which stats them on every handshake and reloads them when they
// change: cert-manager's rotation of a mounted Secret takes effect on the next
// connection, with no restart. `backplane dev` writes a throwaway CA and certificates
// with Mint, so that dev runs the same code path as production.
package mtls
