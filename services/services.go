// Package services is the one list of Backplane's services. Everything that needs to
// know which services exist derives it from All: the process assembler and the command's
// usage text, the BACKPLANE_<SERVICE>_ADDR variables read, the edge's routes. Adding a
// service is one line in All.
package services

import (
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services/asset"
	"github.com/backplane/backplane/services/auth"
	"github.com/backplane/backplane/services/notification"
	"github.com/backplane/backplane/services/subscription"
	"github.com/backplane/backplane/services/usage"
)

// All returns every service, in start-up order: as far as their needs allow, a service
// comes after those it calls. (Auth and notification call each other; each dials the
// other lazily, so either order starts.)
func All() []service.Definition {
	return []service.Definition{
		notification.Definition(),
		auth.Definition(),
		subscription.Definition(),
		usage.Definition(),
		asset.Definition(),
	}
}

// Names returns the name of every service, in the order of All.
func Names() []string { return service.Names(All()) }

// APIs returns every public gRPC service of Backplane, each naming its owner.
func APIs() []service.API { return service.APIs(All()) }
