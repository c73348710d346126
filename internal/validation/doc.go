// Package validation checks requests against the protovalidate rules written in the
// protos, and reports every violation as a google.rpc.BadRequest, the detail clients of
// Google-style APIs already know how to read.
//
// The same interceptors run at the edge and in every service: a service reached directly
// checks its input as strictly as the gateway does.
package validation
