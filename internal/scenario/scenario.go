// Package scenario runs a long test as named steps. A scenario test (sign up, verify,
// log in, refresh, present the spent token again) reads as one story, and each step
// builds on the ones before it; written as one function, a failure names only a line.
// Run as steps, it names the step, and the steps after a failed one, which would only
// fail for want of what it should have made, do not run.
//
// It is for tests only; depguard keeps it out of the binary.
package scenario

import "testing"

// Step runs fn as the subtest name of t. When the step fails, t stops there: the steps
// after it depend on it.
func Step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, fn) {
		t.FailNow()
	}
}
