package config

// MTLS names the files of a piece's mutual-TLS credentials, with which the services
// authenticate one another (BACKPLANE_MTLS_CERT_FILE, BACKPLANE_MTLS_KEY_FILE,
// BACKPLANE_MTLS_CA_FILE): its certificate, whose URI SAN spiffe://backplane/<piece>
// names it, its key, and the CAs it trusts. All three or none; files are reloaded when
// they change. Dev mode mints its own under the data dir.
type MTLS struct {
	CertFile, KeyFile, CAFile string
}

// Enabled reports whether mutual TLS is configured.
func (m MTLS) Enabled() bool { return m.CertFile != "" }

func (e *Env) mtls() MTLS {
	m := MTLS{
		CertFile: e.String("BACKPLANE_MTLS_CERT_FILE", ""),
		KeyFile:  e.String("BACKPLANE_MTLS_KEY_FILE", ""),
		CAFile:   e.String("BACKPLANE_MTLS_CA_FILE", ""),
	}
	if (m.CertFile == "") != (m.KeyFile == "") || (m.CertFile == "") != (m.CAFile == "") {
		e.Invalid("BACKPLANE_MTLS_CERT_FILE", "set all of BACKPLANE_MTLS_CERT_FILE, BACKPLANE_MTLS_KEY_FILE and BACKPLANE_MTLS_CA_FILE, or none")
	}
	return m
}
