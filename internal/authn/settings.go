package authn

import "strings"

// Audience is the aud claim of every access token: the mesh as a whole, since the
// gateway and every service accept the same tokens.
const Audience = "backplane"

// IssuerSetting is the variable that names the iss claim.
const IssuerSetting = "BACKPLANE_JWT_ISSUER"

// IssuerFrom returns the iss claim the auth service signs and every verifier expects:
// BACKPLANE_JWT_ISSUER, or else the public URL without a trailing slash. Both sides call
// it, so they cannot disagree.
func IssuerFrom(publicURL string, getenv func(string) string) string {
	if iss := getenv(IssuerSetting); iss != "" {
		return iss
	}
	return strings.TrimRight(publicURL, "/")
}
