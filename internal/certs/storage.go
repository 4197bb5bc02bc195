package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// PrepareStorage makes [tls] storage for the user gantry will run as (uid and
// gid, named name) when it starts as root: certificates are obtained and renewed
// after root is dropped, so the directory and everything in it must be that
// user's. A missing directory is made (0700); one that holds another user's
// files is an error naming the fix, not something to chown behind the admin's
// back.
func PrepareStorage(dir, name string, uid, gid int) error {
	_, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("[tls] storage %s: %w", dir, err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("[tls] storage %s: %w", dir, err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return fmt.Errorf("[tls] storage %s: give it to %s: %w", dir, name, err)
		}
	case err != nil:
		return fmt.Errorf("[tls] storage %s: %w", dir, err)
	}
	if err := ownedBy(dir, name, uid); err != nil {
		return err
	}
	return closeStorage(dir, uid)
}

// closeStorage makes dir 0700 when other users could list or enter it: it holds
// private keys, and CGI scripts and app workers run as other users must not reach
// them, whatever mode an admin's mkdir left. Only a directory of gantry's own is
// closed (owned by uid, the user gantry runs as, holding nothing but what gantry keeps there): a
// shared one (/etc/ssl/private, 0710 root:ssl-cert) is refused with the fix, as
// closing it, as root, would lock out every other program that reads it.
func closeStorage(dir string, uid int) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("[tls] storage %s: %w", dir, err)
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	if !gantrysOwn(dir, fi, uid, func(name string) bool { return storageEntries[name] || strings.HasPrefix(name, ".write-test-") }) {
		return fmt.Errorf("[tls] storage %s is open to other users (mode %o) and not gantry's alone (another owner, or files gantry did not put there); it would hold private keys: fix: chmod 700 %s, or name a directory of gantry's own", dir, perm, dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("[tls] storage %s is open to other users (mode %o) and cannot be closed: %w; fix: chmod 700 %s", dir, perm, err, dir)
	}
	return nil
}

// storageEntries are what gantry keeps in [tls] storage: the internal CA and
// certmagic's tree.
var storageEntries = map[string]bool{"ca": true, "certificates": true, "acme": true, "ocsp": true, "locks": true, "last_clean.json": true}

// gantrysOwn reports whether dir (described by fi) belongs to uid, the user
// gantry runs as, and holds only entries that ours accepts.
func gantrysOwn(dir string, fi os.FileInfo, uid int, ours func(string) bool) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != uid {
		return false
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range names {
		if !ours(e.Name()) {
			return false
		}
	}
	return true
}

// checkStorage makes sure the user gantry runs as can keep certificates in dir.
func checkStorage(dir string) error {
	uid := os.Geteuid()
	name := userName(uid)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("[tls] storage %s: %w; fix: make it as root and give it to %s: install -d -m 0700 -o %s %s", dir, err, name, name, dir)
	}
	if uid != 0 {
		if err := ownedBy(dir, name, uid); err != nil {
			return err
		}
	}
	if err := closeStorage(dir, uid); err != nil {
		return err
	}
	if uid == 0 {
		return nil
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("[tls] storage %s is not writable by %s, the user gantry runs as: %w; fix: chmod u+rwx %s", dir, name, err, dir)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// ownedBy reports the first file under dir (dir included) that uid does not own.
func ownedBy(dir, name string, uid int) error {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("[tls] storage %s: %w", dir, err)
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("[tls] storage %s: %w; fix: chown -R %s: %s (as root)", dir, err, name, dir)
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("[tls] storage %s: %w", dir, err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
			return fmt.Errorf("[tls] storage: %s belongs to %s, but gantry runs as %s and must write there; fix: chown -R %s: %s (as root)",
				p, userName(int(st.Uid)), name, name, dir)
		}
		return nil
	})
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}
