package main

import (
	"github.com/backplane/backplane/internal/mesh"
	"github.com/backplane/backplane/internal/service"
)

// telemetryPieces names the pieces of Backplane a command hosts, each of which
// reports under a service.name of its own (backplane-gateway, backplane-auth, …):
// every service and the gateway in dev, the one piece served, none in migrate (whose
// few spans are the process's, "backplane").
func telemetryPieces(cmd string, rest []string, started []service.Definition) []string {
	switch cmd {
	case "dev":
		return append(service.Names(started), mesh.Gateway)
	case "serve":
		return []string{rest[0]}
	default:
		return nil
	}
}
