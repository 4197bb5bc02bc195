package supervise

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
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

// RunAs is the credential a route's processes take for its user and group keys:
// nil when both are empty or name gantry's own user and group (nothing to change).
// group replaces the user's primary group. Switching to another user needs root or
// CAP_SETUID and CAP_SETGID (systemd's AmbientCapabilities); without them the
// answer is an error naming the fix, not processes that silently run as gantry.
func RunAs(userName, groupName string) (*syscall.Credential, error) {
	if userName == "" && groupName == "" {
		return nil, nil
	}
	var c *syscall.Credential
	if userName != "" {
		var err error
		if c, err = LookupCredential(userName); err != nil {
			return nil, fmt.Errorf("user %q: %w", userName, err)
		}
	} else {
		c = &syscall.Credential{Uid: uint32(syscall.Geteuid()), Gid: uint32(syscall.Getegid())}
		gs, err := syscall.Getgroups()
		if err != nil {
			return nil, fmt.Errorf("group %q: gantry's own groups: %w", groupName, err)
		}
		for _, g := range gs {
			c.Groups = append(c.Groups, uint32(g))
		}
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", groupName, err)
		}
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("group %s: gid %q is not a number", groupName, g.Gid)
		}
		c.Gid = uint32(gid)
		if !slices.Contains(c.Groups, c.Gid) {
			c.Groups = append([]uint32{c.Gid}, c.Groups...)
		}
	}
	if c.Uid == uint32(syscall.Geteuid()) && c.Gid == uint32(syscall.Getegid()) {
		return nil, nil
	}
	if syscall.Geteuid() != 0 && !canSwitch() {
		who := "gantry's user"
		if u, err := user.LookupId(strconv.Itoa(syscall.Geteuid())); err == nil {
			who = u.Username
		}
		return nil, fmt.Errorf("user %q, group %q: gantry runs as %s without CAP_SETUID and CAP_SETGID, so it cannot start processes as another user; "+
			"start gantry as root without [server] user, give it those capabilities (systemd AmbientCapabilities=CAP_SETUID CAP_SETGID), or remove the key",
			userName, groupName, who)
	}
	return c, nil
}

// canSwitch reports whether this process holds CAP_SETUID and CAP_SETGID in its
// effective set, which setgroups, setgid and setuid in a child need.
func canSwitch() bool {
	const setgid, setuid = 1 << 6, 1 << 7
	caps := capEff()
	return caps&setgid != 0 && caps&setuid != 0
}

// capEff is this process's effective capability set; 0 when unknown.
func capEff() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0
			}
			return caps
		}
	}
	return 0
}
