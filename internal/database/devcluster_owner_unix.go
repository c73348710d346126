//go:build unix

package database

import (
	"os"
	"os/exec"
	"syscall"
)

// runAs makes cmd run as the owner.
func (o *clusterOwner) runAs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)},
	}
}

// owns reports whether path belongs to the owner.
func (o *clusterOwner) owns(path string) bool {
	info, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == o.uid
}
