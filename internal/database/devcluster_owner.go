package database

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
)

// clusterOwner is the OS user a dev cluster's files belong to and its
// binaries run as, when that is not the current user.
type clusterOwner struct {
	name     string
	uid, gid uint32 // the kernel's width, so no conversion can overflow
}

// ownerForCluster returns nil when the binaries can run as the current
// user. As root it returns the postgres user, because initdb, pg_ctl and
// postgres all refuse to run as root.
func ownerForCluster() (*clusterOwner, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root and there is no postgres user to run it as (create one, or run backplane dev as a normal user): %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user has an unusable uid %q", u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user has an unusable gid %q", u.Gid)
	}
	return &clusterOwner{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// claim hands dir and everything in it to the owner. It walks the tree only
// when dir itself belongs to someone else, which is the first run, so later
// starts of a large cluster stay quick.
func (o *clusterOwner) claim(dir string) error {
	if o.owns(dir) {
		return nil
	}
	// Walked inside an os.Root, so a symlink swapped in during the walk cannot lead the
	// chown outside dir.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }() // read-only handle: closing it cannot lose data
	return fs.WalkDir(root.FS(), ".", func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return root.Lchown(path, int(o.uid), int(o.gid))
	})
}
