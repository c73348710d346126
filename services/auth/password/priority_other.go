//go:build !linux

package password

import (
	"errors"
	"time"
)

// lowerThread is Linux-only: elsewhere a nice value is the whole process's, and lowering
// it would slow the API with the hashes.
func lowerThread() error { return errors.ErrUnsupported }

// threadCPU is never called where lowerThread fails.
func threadCPU() (time.Duration, error) { return 0, errors.ErrUnsupported }
