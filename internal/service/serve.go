package service

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// CheckServe reports every variable that a service of defs requires in serve mode
// (Definition.ServeRequires) and that getenv leaves empty. `backplane serve` calls it
// with the configuration, before anything is opened; dev mode does not, so a laptop
// keeps working without production secrets.
func CheckServe(getenv func(string) string, defs ...Definition) error {
	var errs []error
	for _, d := range defs {
		names := make([]string, 0, len(d.ServeRequires))
		for name := range d.ServeRequires {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if strings.TrimSpace(getenv(name)) == "" {
				errs = append(errs, fmt.Errorf("%s is required in serve mode by %s: %s", name, d.Name, d.ServeRequires[name]))
			}
		}
	}
	return errors.Join(errs...)
}
