package supervise

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// LookupCredential resolves a user name to the uid, primary gid and supplementary
// groups that gantry and its children take when they drop root. The groups are the
// user's whole group list, primary group included, as initgroups(3) builds it for
// Apache, nginx and systemd's User=: a script run as www-data may read what the
// groups www-data belongs to may read, and nothing of root's groups is kept.
//
// Only names are accepted: a numeric id that is not also a name fails, as it does
// in the config's check of the same keys.
func LookupCredential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q is not a number", name, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q is not a number", name, u.Gid)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("user %s: group list: %w", name, err)
	}
	c := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}
	for _, g := range gids {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %s: group id %q is not a number", name, g)
		}
		if uint32(n) != c.Gid {
			c.Groups = append(c.Groups, uint32(n))
		}
	}
	return c, nil
}
