// Package gateway is Backplane's edge: one REST front door (grpc-gateway transcoding of
// every google.api.http mapping) and one native gRPC front door (a typed proxy built
// from the generated descriptors), both forwarding to the services that own the RPCs.
//
// INTERNAL RPCs are never routed: they have no HTTP mapping, and the gRPC proxy does not
// register them, so the edge answers 404 and UNIMPLEMENTED for them. Policies that both
// doors share (authentication, rate limiting, CORS) plug into the chains built here.
package gateway
