//go:build unix

package database

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// runAs makes cmd run as the owner.
func (o *clusterOwner) runAs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: o.uid, Gid: o.gid},
	}
}

// owns reports whether path belongs to the owner.
func (o *clusterOwner) owns(path string) bool {
	info, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Uid == o.uid
}

// canReach reports a directory on the way to dir that the owner cannot pass through, as
// an error saying what to do: PostgreSQL runs as the owner and must reach its data.
func (o *clusterOwner) canReach(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		perm := info.Mode().Perm()
		passable := perm&0o001 != 0 ||
			ok && st.Uid == o.uid && perm&0o100 != 0 ||
			ok && st.Gid == o.gid && perm&0o010 != 0
		if !passable {
			return fmt.Errorf("PostgreSQL runs as the %s user, which cannot pass through %s (mode %s): "+
				"set BACKPLANE_DATA_DIR to a directory it can reach, such as /var/tmp/backplane, or set BACKPLANE_DATABASE_URL",
				o.name, p, perm)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
