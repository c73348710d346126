// Package authn authenticates and authorizes every RPC of the mesh: it issues and
// verifies access tokens (Ed25519-signed JWTs), mirrors which sessions are live in Redis,
// resolves API keys through the auth service, checks service credentials for INTERNAL
// RPCs, and enforces each method's access policy in one gRPC interceptor shared by the
// gateway and every service.
//
// Verification trusts nothing in a token's header beyond the key id: the algorithm is
// pinned to EdDSA and the key id resolves only within our own key set.
package authn
