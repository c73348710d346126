// Package fault is Backplane's one error vocabulary.
//
// Domain code returns a *Error carrying a Kind, a message that is safe to show to clients
// and an optional wrapped cause that is not. Status turns any error into a gRPC status in
// one place, so each kind maps to exactly one code everywhere.
//
// Messages reach clients: never put internals, SQL, tokens or other secrets in them. The
// cause is for logs only and is never sent.
package fault
