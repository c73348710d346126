//go:build !linux

package password

import "errors"

// lowerThreadPriority is Linux-only: elsewhere a nice value is the whole process's, and
// lowering it would slow the API with the hashes.
func lowerThreadPriority() error { return errors.ErrUnsupported }
