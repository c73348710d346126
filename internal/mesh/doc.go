// Package mesh assembles Backplane's processes from service definitions
// (internal/service) and nothing else: it opens each service's database pool, Redis and
// peer connections, applies migrations, starts services and the gateway on their
// listeners, serves the admin endpoints, and shuts everything down in order. It knows no
// service by name: which service issues credentials, what each needs and what each
// serves at the edge all come from the definitions. `backplane dev` uses it to run the
// whole mesh in one process; `backplane serve` to run a single piece.
package mesh
