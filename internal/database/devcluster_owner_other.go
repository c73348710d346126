//go:build !unix

package database

import "os/exec"

// runAs does nothing: only Unix has root to step down from, and
// ownerForCluster never returns an owner elsewhere.
func (o *clusterOwner) runAs(*exec.Cmd) {}

// owns reports true: there is never an owner to hand files to here.
func (o *clusterOwner) owns(string) bool { return true }

func (o *clusterOwner) canReach(string) error { return nil }
