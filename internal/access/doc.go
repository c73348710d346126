// Package access reads the access policy that every RPC declares in its proto
// (the backplane.access.v1.policy method option).
//
// The gateway and the services ask this package, never a hand-kept list, which audience
// an RPC is for, so a new RPC is governed by its contract the moment it is generated.
package access
