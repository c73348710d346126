// Package backplane is the Go client of Backplane's native gRPC front door: one
// connection that exposes the generated client of every edge service (auth,
// subscription, asset, usage, notification) and adds what every client author would
// otherwise write by hand.
//
//   - Credentials. [Client.SignIn] (email and password) keeps a session's tokens: the
//     access token is refreshed ahead of its expiry, by one refresh at a time however
//     many calls are in flight, because the server ends a session whose spent refresh
//     token is presented twice. A call refused as UNAUTHENTICATED is retried once after
//     a refresh. The tokens live in a [TokenStore] (memory unless [WithTokenStore] names
//     another), so a desktop app can keep its user signed in across restarts.
//     [WithAPIKey] authenticates as an API key instead, for servers and scripts.
//   - Retries. UNAVAILABLE is retried with exponential backoff and jitter for calls that
//     are safe to repeat; RESOURCE_EXHAUSTED carrying a google.rpc.RetryInfo is retried
//     after the delay the server asks for. [RetryPolicy] describes which calls qualify.
//   - Errors. Every failed call returns a [*Error]: the gRPC code and message with the
//     google.rpc details decoded (field violations, quota failure, retry delay, error
//     info) and the request id to quote to support.
//
// Calls on the service clients take the generated request types:
//
//	client, err := backplane.New("api.example.com:443")
//	...
//	if _, err := client.SignIn(ctx, "ada@example.com", password); err != nil { ... }
//	me, err := client.Auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
package backplane
