// Package config reads Backplane's settings from BACKPLANE_* environment variables
// (and the standard OTEL_* ones) and validates them all at start-up, so that a bad value
// stops the process with a message naming the variable and what it accepts, instead of
// failing later in a request.
package config
