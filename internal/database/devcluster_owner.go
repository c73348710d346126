package database

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// clusterOwner is the OS user a dev cluster's files belong to and its
// binaries run as, when that is not the current user.
type clusterOwner struct {
	name     string
	uid, gid int
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
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("postgres user has a non-numeric uid %q", u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("postgres user has a non-numeric gid %q", u.Gid)
	}
	return &clusterOwner{name: u.Username, uid: uid, gid: gid}, nil
}

// claim hands dir and everything in it to the owner. It walks the tree only
// when dir itself belongs to someone else, which is the first run, so later
// starts of a large cluster stay quick.
func (o *clusterOwner) claim(dir string) error {
	if o.owns(dir) {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, o.uid, o.gid)
	})
}
