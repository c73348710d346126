package authn

// Audience is the aud claim of every access token: the mesh as a whole, since the
// gateway and every service accept the same tokens. (The issuer is a setting, read once
// by internal/config, so that signer and verifiers cannot disagree.)
const Audience = "backplane"
