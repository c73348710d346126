// Package mesh assembles Backplane's processes: it starts services and the gateway on
// their listeners, connects services to each other over real gRPC, serves the admin
// endpoints, and shuts everything down in order. `backplane dev` uses it to run the
// whole mesh in one process; `backplane serve` to run a single piece.
package mesh
